import os, time; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1)
import numpy as np
exec(open("docs/notes/scripts/q3.py").read().split("t=time.time(); m =")[0])
m = Qwen3OmniMoeThinkerForConditionalGeneration(cfg).eval()
fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=300, n_fft=400)
w=[np.random.randn(int(16000*s)).astype(np.float32)*.1 for s in (1.37, 3.05)]
f=fe(w, sampling_rate=16000, padding=True, return_attention_mask=True, return_tensors="pt")
from transformers.models.qwen3_omni_moe.processing_qwen3_omni_moe import _get_feat_extract_output_lengths as L
n=L(f["attention_mask"].sum(-1),50).tolist(); print("q3 frames", f["attention_mask"].sum(-1).tolist(), "tokens", n, "feat shape", tuple(f["input_features"].shape))
a=m.model.get_audio_features(f["input_features"], feature_attention_mask=f["attention_mask"]).last_hidden_state; print("q3 audio embeds", tuple(a.shape), "== sum", sum(n))
T=max(n)+6; ids=torch.full((2,T),1); am=torch.zeros_like(ids)
for i,k in enumerate(n): ids[i,:3]=torch.tensor([10,503,AUD]) if False else torch.tensor([10,11,12]); ids[i,3:3+k]=AUD; ids[i,3+k]=13; am[i,:4+k]=1
t=time.time()
with torch.no_grad(): o=m(input_ids=ids, attention_mask=am, input_features=f["input_features"], feature_attention_mask=f["attention_mask"])
print("q3 batch fwd ok", tuple(o.logits.shape), round(time.time()-t,3))
exec(open("docs/notes/scripts/nh.py").read().split("t=time.time(); m =")[0])
m = NemotronH_Omni_Reasoning_V3(cfg).eval()
fe = ParakeetFeatureExtractor(feature_size=128)
f=fe(w, sampling_rate=16000, return_tensors="pt")
class D: audio_hop_length=160; audio_subsampling_factor=8
from transformers.models.nemotron_h_omni.processing_nemotron_h_omni import NemotronH_Omni_Reasoning_V3Processor as P
n=[P._estimate_audio_num_embeddings(D(), len(x)) for x in w]
a=m.get_audio_features(f["input_features"], f["attention_mask"]).pooler_output
print("nh frames", tuple(f["input_features"].shape), f["attention_mask"].sum(-1).tolist(), "tokens", n, "embeds", tuple(a.shape))
T=max(n)+6; ids=torch.full((2,T),1); am=torch.zeros_like(ids)
for i,k in enumerate(n): ids[i,:3]=torch.tensor([10,11,12]); ids[i,3:3+k]=AUD; ids[i,3+k]=13; am[i,:4+k]=1
t=time.time()
with torch.no_grad(): o=m(input_ids=ids, attention_mask=am, input_features=f["input_features"], input_features_mask=f["attention_mask"])
print("nh batch fwd ok", tuple(o.logits.shape), round(time.time()-t,3))
