//! Talking to OpenAI-compatible servers (vLLM, SGLang, llama.cpp server, OpenAI, DeepSeek): the
//! client that generation, scoring and the LLM judge use, and vLLM's prompt log-probs.

pub mod client;
pub mod prompt_logprobs;
