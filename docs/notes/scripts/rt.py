import os, sys, time, tempfile; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1)
exec(open("docs/notes/scripts/nh.py").read().split("t=time.time(); m =")[0])
m = NemotronH_Omni_Reasoning_V3(cfg).eval()
d=tempfile.mkdtemp(); t=time.time(); m.save_pretrained(d)
import json; j=json.load(open(d+"/config.json")); print("saved model_type", j["model_type"], j.get("architectures"), "audio_config keys has projection_hidden_size:", "projection_hidden_size" in j["audio_config"])
from transformers import AutoModel, AutoModelForCausalLM, AutoConfig
c2=AutoConfig.from_pretrained(d); print("autoconfig", type(c2).__name__)
from transformers import AutoModelForImageTextToText; m2=AutoModelForImageTextToText.from_pretrained(d); print("reload", type(m2).__name__, round(time.time()-t,2))
sd1=m.state_dict(); sd2=m2.state_dict(); print("same keys", set(sd1)==set(sd2), "max diff", max((sd1[k].float()-sd2[k].float()).abs().max().item() for k in sd1))
print("some keys", [k for k in sd1 if "experts" in k][:3])
exec(open("docs/notes/scripts/q3.py").read().split("t=time.time(); m =")[0])
m = Qwen3OmniMoeThinkerForConditionalGeneration(cfg).eval(); d=tempfile.mkdtemp(); m.save_pretrained(d)
j=json.load(open(d+"/config.json")); print("q3 saved", j["model_type"], j.get("architectures"), "vision_start_token_id" in j)
from safetensors import safe_open
with safe_open(d+"/model.safetensors","pt") as f: ks=list(f.keys())
print("q3 on-disk keys sample", [k for k in ks if "layers.0.mlp" in k and "language" in k], ks[:2])
m2=Qwen3OmniMoeThinkerForConditionalGeneration.from_pretrained(d); print("q3 reload ok")
print("q3 keys w/ layers.0:", [k for k in ks if ".layers.0." in k and "audio" not in k and "visual" not in k][:12])
print("q3 top prefixes", sorted(set(k.split(".")[0] for k in ks)))
with safe_open(d+"/model.safetensors","pt") as f: pass
