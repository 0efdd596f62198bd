"""Priority scoring: the features an intent has at the prioritise stage, the documented urgency
rule the model learns (``rule``), the training script (``train``) and the ONNX scorer
(``model``).  The transparent function in ``pipeline.stages.prioritise`` stays the fallback.
"""
