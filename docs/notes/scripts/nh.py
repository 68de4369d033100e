import os, time; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1); torch.manual_seed(0)
import numpy as np
from transformers import AutoConfig
from transformers.models.nemotron_h_omni import NemotronH_Omni_Reasoning_V3_Config, NemotronH_Omni_Reasoning_V3
from transformers.models.parakeet import ParakeetFeatureExtractor
V=512; AUD=500
cfg = NemotronH_Omni_Reasoning_V3_Config(
  text_config=dict(vocab_size=V, hidden_size=64, layers_block_type=["linear_attention","moe","full_attention","mlp"],
     num_attention_heads=4, num_key_value_heads=2, head_dim=16, intermediate_size=128,
     mamba_num_heads=4, mamba_head_dim=16, ssm_state_size=16, n_groups=2, chunk_size=16, conv_kernel=4,
     n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, moe_shared_expert_intermediate_size=32,
     max_position_embeddings=512),
  vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, patch_size=16, image_size=32, max_img_size=64, num_registers=1, num_cls_tokens=1, video_temporal_patch_size=2),
  audio_config=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, subsampling_conv_channels=16,
     num_mel_bins=128, conv_kernel_size=9, projection_hidden_size=64, projection_bias=False),
  vision_hidden_size=32, projector_hidden_size=64, audio_token_id=AUD, image_token_id=501, video_token_id=502,
)
print("audio cfg", type(cfg.audio_config).__name__, cfg.audio_config.attention_bias, cfg.audio_config.scale_input, getattr(cfg.audio_config,"projection_hidden_size",None))
t=time.time(); m = NemotronH_Omni_Reasoning_V3(cfg).eval(); print("build s", round(time.time()-t,2))
tot=sum(p.numel() for p in m.parameters()); print("params", tot)
for k in ["language_model","vision_model","audio_tower","embed_audio","multi_modal_projector"]:
  print(" ", k, type(m.get_submodule(k)).__name__, sum(p.numel() for p in m.get_submodule(k).parameters()))
print("tie", cfg.text_config.tie_word_embeddings, m.language_model.lm_head.weight is m.language_model.model.embeddings.weight)
for n,mod in m.named_modules():
  if (n.startswith("language_model") and (".layers.1." not in n or True) and n.count(".")<=5) or n.startswith("embed_audio") or (n.startswith("audio_tower") and n.count(".")<=2 and "layers.1" not in n):
    print("  ", n, type(mod).__name__)
for n,p in m.named_parameters():
  if "language_model.model.layers.1.mixer" in n: print("  P", n, tuple(p.shape))
fe = ParakeetFeatureExtractor(feature_size=128)
wav=np.random.randn(16000*2).astype(np.float32)*0.1
f = fe([wav], sampling_rate=16000, return_tensors="pt")
print("feat", f["input_features"].shape, f["attention_mask"].sum())
from transformers.models.nemotron_h_omni.processing_nemotron_h_omni import NemotronH_Omni_Reasoning_V3Processor as P
class Dummy: pass
est = P._estimate_audio_num_embeddings
obj=Dummy(); obj.audio_hop_length=160; obj.audio_subsampling_factor=8
n = est(obj, len(wav)); print("n audio tokens est", n)
for s in [0.5,1,2,5,10,30]: print(" sec", s, est(obj, int(s*16000)))
ids = torch.tensor([[10,11]+[AUD]*n+[12,13,14]])
for mode in ["eval","train"]:
  m.train(mode=="train")
  t=time.time()
  ctx = torch.no_grad() if mode=="eval" else torch.enable_grad()
  with ctx:
    out = m(input_ids=ids, attention_mask=torch.ones_like(ids), input_features=f["input_features"], input_features_mask=f["attention_mask"], labels=ids)
    if mode=="train": out.loss.backward()
  print(mode, "fwd s", round(time.time()-t,2), out.logits.shape, float(out.loss))
m.eval()
with torch.no_grad():
  a = m.get_audio_features(f["input_features"], f["attention_mask"])
print("audio feats", a.last_hidden_state.shape, a.pooler_output.shape)
# generate a few tokens (cache path, Mamba recurrent step)
t=time.time()
with torch.no_grad():
  g = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), input_features=f["input_features"], input_features_mask=f["attention_mask"], max_new_tokens=3, do_sample=False)
print("generate", g.shape, round(time.time()-t,2))
