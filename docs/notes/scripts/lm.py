import os, time; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1); torch.manual_seed(0)
from transformers import FalconH1Config, FalconH1ForCausalLM, Jais2Config, Jais2ForCausalLM
V=512
cfgs = {
 "falcon_h1": (FalconH1Config, FalconH1ForCausalLM, dict(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
     num_attention_heads=4, num_key_value_heads=2, mamba_d_ssm=64, mamba_n_heads=4, mamba_d_state=16, mamba_n_groups=1,
     mamba_chunk_size=16, max_position_embeddings=512)),
 "jais2": (Jais2Config, Jais2ForCausalLM, dict(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, eos_token_id=2, bos_token_id=1)),
}
for k,(C,M,kw) in cfgs.items():
  c=C(**kw); t=time.time(); m=M(c); print(k, "build", round(time.time()-t,2), "params", sum(p.numel() for p in m.parameters()), "tie_default", C().tie_word_embeddings if False else c.tie_word_embeddings, "tied?", m.lm_head.weight is m.model.embed_tokens.weight)
  print("  mamba_d_head", getattr(c,"mamba_d_head",None))
  for n,mod in m.named_modules():
    if n.startswith("model.layers.0") and n.count(".")<=4: print("   ", n, type(mod).__name__)
  for n,b in m.named_buffers():
    if "layers.0" in n: print("    B", n, tuple(b.shape))
  ids=torch.randint(0,V,(2,40)); am=torch.ones_like(ids); am[1,:5]=0
  for mode in ["eval","train"]:
    m.train(mode=="train"); t=time.time()
    with (torch.no_grad() if mode=="eval" else torch.enable_grad()):
      o=m(input_ids=ids, attention_mask=am, labels=ids)
      if mode=="train": o.loss.backward()
    print("  ", mode, round(time.time()-t,3), tuple(o.logits.shape), round(float(o.loss),3))
  m.eval(); t=time.time()
  with torch.no_grad(): g=m.generate(input_ids=ids[:1], max_new_tokens=4, do_sample=False)
  print("   gen", g.shape, round(time.time()-t,3))
