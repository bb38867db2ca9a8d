# A/B on the GPU: fp16 graphs with Softmax/ReduceMean kept in float32 (old) vs in float16 (new).
set -u
out=$1
rm -rf /tmp/old && mkdir /tmp/old && cp -r app inference models resources scripts tests pyproject.toml /tmp/old/
sed -i 's/^FP16_KEEP_FP32 = .*/FP16_KEEP_FP32 = ["LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt", "Erf", "Range"]/' /tmp/old/models/export/onnx_export.py
grep -n "^FP16_KEEP_FP32" /tmp/old/models/export/onnx_export.py models/export/onnx_export.py
export PYTHONUNBUFFERED=1 MEDMPT_DATA_DIR=/tmp/medmpt-home MEDMPT_LOG_DIR=/tmp/medmpt-home
for cfg in tiny paper; do
  for v in old new; do
    dir=$PWD; [ $v = old ] && dir=/tmp/old
    echo "=== $cfg $v ($(date +%T))"
    (cd $dir && PYTHONPATH=/tmp/pp/site:$dir timeout 130 python3 -m app.cli bench infer --config $cfg --device cuda --repeats 10) > $out/ab-$cfg-$v.txt 2>&1
    cat $out/ab-$cfg-$v.txt
  done
done
