import os; os.environ["HF_HUB_OFFLINE"]="1"
import torch; torch.set_num_threads(1)
import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor
vocab={c:i for i,c in enumerate("abcdefghijklmnopqrstuvwxyz ")}; vocab["[UNK]"]=len(vocab)
tk=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")); tk.pre_tokenizer=pre_tokenizers.Split("", "isolated")
def mk(extra):
  t=PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", extra_special_tokens=extra)
  return t
wav=np.random.randn(32000).astype(np.float32)*0.1
# Qwen3 omni
from transformers import Qwen3OmniMoeProcessor
t=mk({"audio_token":"<|audio_pad|>","audio_bos_token":"<|audio_start|>","audio_eos_token":"<|audio_end|>","image_token":"<|image_pad|>","video_token":"<|video_pad|>","vision_bos_token":"<|vision_start|>","vision_eos_token":"<|vision_end|>"})
print("audio_token_id", t.audio_token, t.audio_token_id)
try:
  p=Qwen3OmniMoeProcessor(image_processor=None, video_processor=None, feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=t)
  o=p(text=["ab <|audio_start|><|audio_pad|><|audio_end|> c"], audio=[wav], return_tensors="pt")
  print("q3 keys", list(o.keys()), o["input_ids"].shape, int((o["input_ids"]==t.audio_token_id).sum()), o["input_features"].shape)
except Exception as e: print("q3 proc ERR", type(e).__name__, e)
from transformers.models.nemotron_h_omni import NemotronH_Omni_Reasoning_V3Processor
from transformers.models.parakeet import ParakeetFeatureExtractor
t2=mk({"audio_token":"<so_embedding>","image_token":"<image>","video_token":"<video>"})
t2.add_special_tokens({"additional_special_tokens":["<so_start>","<so_end>","<img>","</img>"]})
try:
  p2=NemotronH_Omni_Reasoning_V3Processor(image_processor=None, video_processor=None, tokenizer=t2, feature_extractor=ParakeetFeatureExtractor(feature_size=128))
  o=p2(text=["ab <so_embedding> c"], audio=[wav], return_tensors="pt")
  print("nh keys", list(o.keys()), o["input_ids"].shape, int((o["input_ids"]==t2.convert_tokens_to_ids("<so_embedding>")).sum()), o["input_features"].shape)
  print(t2.decode(o["input_ids"][0][:6]), "...", t2.decode(o["input_ids"][0][-6:]))
except Exception as e: import traceback; traceback.print_exc()
