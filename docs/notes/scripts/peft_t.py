import os, sys; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1)
sys.argv=["x"]; 
exec(open("docs/notes/scripts/nh.py").read().split("t=time.time(); m =")[0])
m = NemotronH_Omni_Reasoning_V3(cfg)
from peft import LoraConfig, get_peft_model
lc = LoraConfig(r=4, lora_alpha=8, target_modules=r"^language_model\.model\.layers\.\d+\.mixer\.(q_proj|k_proj|v_proj|o_proj|in_proj|out_proj|up_proj|down_proj|shared_experts\.up_proj|shared_experts\.down_proj)$",
                target_parameters=["mixer.experts.up_proj","mixer.experts.down_proj"])
try:
  pm = get_peft_model(m, lc); pm.print_trainable_parameters()
  print([n for n,p in pm.named_parameters() if p.requires_grad][:40])
  import numpy as np
  fe = ParakeetFeatureExtractor(feature_size=128); wav=np.random.randn(16000).astype(np.float32)
  f=fe([wav], sampling_rate=16000, return_tensors="pt")
  ids=torch.tensor([[10]+[500]*13+[11,12]]); pm.train()
  o=pm(input_ids=ids, input_features=f["input_features"], input_features_mask=f["attention_mask"], labels=ids); o.loss.backward(); print("peft train ok", float(o.loss))
except Exception as e:
  import traceback; traceback.print_exc()
# Qwen3: does target_parameters work on gate_up_proj
exec(open("docs/notes/scripts/q3.py").read().split("t=time.time(); m =")[0])
m = Qwen3OmniMoeThinkerForConditionalGeneration(cfg)
lc = LoraConfig(r=4, target_modules=r"^model\.language_model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)$", target_parameters=["mlp.experts.gate_up_proj","mlp.experts.down_proj"])
try:
  pm=get_peft_model(m, lc); pm.print_trainable_parameters()
  ids=torch.randint(0,400,(1,12)); o=pm(input_ids=ids, labels=ids); o.loss.backward(); print("q3 peft ok")
except Exception as e:
  import traceback; traceback.print_exc()
