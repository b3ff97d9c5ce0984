"""What each condition says: greedy replies of a model (a Hugging Face folder with a chat template) to a few
held-out prompts, three conversational and three lecture questions."""

import torch

from classit.data.chat import USER, install_chat_template

PROMPTS = [
    ("conversation", "Hi! How was your weekend?"),
    ("conversation", "Do you have any pets at home?"),
    ("conversation", "What kind of music do you like to listen to?"),
    ("lecture", "What is a volcano?"),
    ("lecture", "Tell me about the moon."),
    ("lecture", "Why do leaves change colour in autumn?"),
]
MAX_NEW_TOKENS = 40


@torch.no_grad()
def replies(model_dir: str) -> list[str]:
    """The model's greedy reply (at most MAX_NEW_TOKENS tokens, up to its end-of-turn token) to each prompt; a
    tokenizer without a chat template but with classit's chat tokens gets classit's template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not tokenizer.chat_template:  # an older classit export: its tokenizer reserves the chat tokens
        if tokenizer.convert_tokens_to_ids(USER) in (None, tokenizer.unk_token_id):
            raise ValueError(f"{model_dir}: the tokenizer has no chat template")
        install_chat_template(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    stop = [t for t in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>"))
            if t is not None and t != tokenizer.unk_token_id]
    out = []
    for _, prompt in PROMPTS:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        generated = model.generate(**ids, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, eos_token_id=stop,
                                   pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0])
        out.append(tokenizer.decode(generated[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return out
