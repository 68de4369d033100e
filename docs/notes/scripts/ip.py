import os; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1)
for name in ["Qwen2VLImageProcessor","Qwen2VLImageProcessorPil","Qwen2VLVideoProcessor","Qwen3VLVideoProcessor"]:
  try:
    import transformers; c=getattr(transformers,name); o=c(); print(name,"OK", type(o).__name__)
  except Exception as e: print(name,"ERR",type(e).__name__, str(e)[:150])
for mod,name in [("transformers.models.nemotron_h_omni.image_processing_nemotron_h_omni","NemotronH_Omni_Reasoning_V3ImageProcessor"),("transformers.models.nemotron_h_omni.video_processing_nemotron_h_omni","NemotronH_Omni_Reasoning_V3VideoProcessor")]:
  try:
    import importlib; c=getattr(importlib.import_module(mod),name); o=c(); print(name,"OK")
  except Exception as e: print(name,"ERR",type(e).__name__, str(e)[:150])
