import os, time, tempfile, json, re; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1)
exec(open("docs/notes/scripts/nh.py").read().split("t=time.time(); m =")[0])
from safetensors.torch import save_file
m = NemotronH_Omni_Reasoning_V3(cfg).eval()
d=tempfile.mkdtemp(); m.save_pretrained(d)
sd={k:v.contiguous() for k,v in m.state_dict().items()}
new={}
for k,v in sd.items():
  k2=k
  k2=k2.replace("language_model.model.","language_model.backbone.")
  k2=re.sub(r"^audio_tower\.", "sound_encoder.encoder.", k2)
  k2=k2.replace("embed_audio.layer_norm.","sound_projection.norm.").replace("embed_audio.linear_1.","sound_projection.linear1.").replace("embed_audio.linear_2.","sound_projection.linear2.")
  k2=k2.replace("multi_modal_projector.layer_norm.","mlp1.0.").replace("multi_modal_projector.linear_1.","mlp1.1.").replace("multi_modal_projector.linear_2.","mlp1.3.")
  mm=re.match(r"(.*mixer\.experts)\.(up_proj|down_proj)$", k2)
  if mm:
    for i in range(v.shape[0]): new[f"{mm.group(1)}.{i}.{mm.group(2)}.weight"]=v[i].clone()
  else: new[k2]=v
os.remove(d+"/model.safetensors"); save_file(new, d+"/model.safetensors", metadata={"format":"pt"})
j=json.load(open(d+"/config.json"))
j["llm_config"]=j.pop("text_config"); j["sound_config"]=j.pop("audio_config"); j["sound_context_token_id"]=j.pop("audio_token_id"); j["img_context_token_id"]=j.pop("image_token_id")
json.dump(j, open(d+"/config.json","w"))
from transformers import AutoModelForImageTextToText
m2, info = AutoModelForImageTextToText.from_pretrained(d, output_loading_info=True)
print("legacy-key load: missing", sorted(info["missing_keys"])[:8], "unexpected", sorted(info["unexpected_keys"])[:8])
sd2=m2.state_dict(); print("max diff", max((sd[k].float()-sd2[k].float()).abs().max().item() for k in sd))
print("audio_token_id", m2.config.audio_token_id)
j["model_type"]="NemotronH_Nano_Omni_Reasoning_V3"; j["architectures"]=["NemotronH_Nano_Omni_Reasoning_V3"]
j["auto_map"]={"AutoConfig":"configuration.NemotronH_Nano_Omni_Reasoning_V3_Config","AutoModel":"modeling.NemotronH_Nano_Omni_Reasoning_V3"}
j["sound_config"]["model_type"]="parakeet"
json.dump(j, open(d+"/config.json","w"))
from transformers import AutoConfig
try: AutoConfig.from_pretrained(d); print("autoconfig ok")
except Exception as e: print("AutoConfig on remote-code model_type:", type(e).__name__, str(e)[:160])
try:
  pass #("direct class from_pretrained ok", type(m3.config).__name__, m3.config.model_type, m3.config.audio_token_id, type(m3.config.audio_config).__name__)
except Exception as e: print("ERR", e)
j2,_=NemotronH_Omni_Reasoning_V3_Config.get_config_dict(d); j2["sound_config"].pop("model_type",None); j2.pop("auto_map",None)
cfg3=NemotronH_Omni_Reasoning_V3_Config.from_dict(j2)
m3,info=NemotronH_Omni_Reasoning_V3.from_pretrained(d, config=cfg3, output_loading_info=True)
print("workaround load ok; missing", sorted(info["missing_keys"])[:5], "unexpected", sorted(info["unexpected_keys"])[:5], "audio id", m3.config.audio_token_id)
sd3=m3.state_dict(); print("max diff", max((sd[k].float()-sd3[k].float()).abs().max().item() for k in sd))
