import os, time; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1); torch.manual_seed(0)
from transformers import Qwen3OmniMoeThinkerConfig, Qwen3OmniMoeThinkerForConditionalGeneration, WhisperFeatureExtractor
V=512; AUD=500
cfg = Qwen3OmniMoeThinkerConfig(
  audio_config=dict(num_mel_bins=128, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128, d_model=64,
                    output_dim=64, downsample_hidden_size=32, n_window=50, n_window_infer=800, max_source_positions=1500),
  vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=16,
                     spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64, deepstack_visual_indexes=[0]),
  text_config=dict(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=16, moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2,
                   rope_parameters={"rope_type":"default","rope_theta":1e6,"mrope_section":[2,3,3],"interleaved":True}),
  audio_token_id=AUD, image_token_id=501, video_token_id=502, audio_start_token_id=503, vision_start_token_id=504,
)
t=time.time(); m = Qwen3OmniMoeThinkerForConditionalGeneration(cfg).eval(); print("build s", round(time.time()-t,2))
print("params", sum(p.numel() for p in m.parameters()))
print("audio_tower", sum(p.numel() for p in m.model.audio_tower.parameters()), "visual", sum(p.numel() for p in m.model.visual.parameters()))
print("tie", cfg.tie_word_embeddings, m.lm_head.weight is m.model.language_model.embed_tokens.weight)
names=[n for n,_ in m.named_modules()]
for n in names:
  if n.startswith("model.language_model.layers.0") or n.startswith("model.audio_tower") and ".layers.1" not in n and ".layers.0." not in n or n in("lm_head",): print("  ", n, type(m.get_submodule(n)).__name__)
for n,p in m.named_parameters():
  if "layers.0.mlp" in n and "language_model" in n: print("  P", n, tuple(p.shape))
fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400)
import numpy as np
wav=np.random.randn(16000*2).astype(np.float32)*0.1
f = fe([wav], sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
print("feat", f["input_features"].shape, f["attention_mask"].shape, f["attention_mask"].sum())
from transformers.models.qwen3_omni_moe.processing_qwen3_omni_moe import _get_feat_extract_output_lengths as L
n=int(L(f["attention_mask"].sum(-1),50)[0]); print("n audio tokens", n)
for s in [0.5,1,2,5,10,30]: print(" sec",s, int(L(torch.tensor([int(s*100)]),50)[0]))
ids = torch.tensor([[10,11,AUD-3]+[AUD]*n+[12,13,14]])
ids[0,2]=503
t=time.time()
with torch.no_grad():
  out = m(input_ids=ids, attention_mask=torch.ones_like(ids), input_features=f["input_features"], feature_attention_mask=f["attention_mask"], labels=ids)
print("fwd s", round(time.time()-t,2), out.logits.shape, float(out.loss))
a = m.model.get_audio_features(f["input_features"], feature_attention_mask=f["attention_mask"])
print("audio feats", a.last_hidden_state.shape)
