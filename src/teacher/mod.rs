//! Talking to OpenAI-compatible servers (vLLM, SGLang, llama.cpp server, OpenAI, DeepSeek): the
//! client the LLM judge uses now and teacher generation will use.

pub mod client;
