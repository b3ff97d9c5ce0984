"""What each condition says (classit/study/replies.py): greedy replies of an exported model to the held-out prompts."""

import torch
from transformers import AutoModelForCausalLM

from classit.data.chat import END, render_prompt
from classit.study.replies import MAX_NEW_TOKENS, PROMPTS, replies


def greedy(model, tokenizer, prompt: str) -> str:
    """The reply to ``prompt`` token by token: the most likely next token until the end of the turn or the limit."""
    ids = tokenizer(render_prompt(prompt), return_tensors="pt")["input_ids"]  # BOS first, as the chat template
    stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END)}
    reply = []
    while len(reply) < MAX_NEW_TOKENS:
        with torch.no_grad():
            token = int(model(ids).logits[0, -1].argmax())
        reply.append(token)
        if token in stop:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return tokenizer.decode(reply, skip_special_tokens=True).strip()


def test_each_reply_is_the_models_greedy_continuation_of_the_chat_prompt(tiny_model_dir, tokenizer):
    said = replies(str(tiny_model_dir))
    assert len(said) == len(PROMPTS) == 6 and all(said)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    assert said[3] == greedy(model, tokenizer, PROMPTS[3][1])
