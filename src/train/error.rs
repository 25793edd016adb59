//! Why training, sampling, merging or making a model stopped: the file at fault and what to do.

use std::path::PathBuf;

use super::data::{ConversationError, LineError, Misaligned, Skip};
use crate::template::TemplateError;

/// An error of the trainer and the tools around it (`retort train`, `train merge`,
/// `generate-local`).
///
/// Causes (an I/O, JSON or tensor error) are part of the message and never chained as a
/// source, so `{:#}` prints each once.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor operation failed (out of memory, a shape the kernels refuse).
    #[error("{0}")]
    Tensor(candle_core::Error),
    #[error("cannot read {}: {cause}", path.display())]
    Read { path: PathBuf, cause: std::io::Error },
    /// Safetensors that cannot be read (missing, truncated, another format).
    #[error("cannot read {}: {cause}", path.display())]
    ReadTensors { path: PathBuf, cause: candle_core::Error },
    #[error("cannot write {}: {cause}", path.display())]
    Write { path: PathBuf, cause: std::io::Error },
    #[error("cannot write {}: {cause}", path.display())]
    WriteTensors { path: PathBuf, cause: candle_core::Error },
    #[error("cannot create {}: {cause}", path.display())]
    CreateDir { path: PathBuf, cause: std::io::Error },
    #[error("cannot copy {}: {cause}", path.display())]
    Copy { path: PathBuf, cause: std::io::Error },
    /// A JSON file (config, index, adapter config, trainer state) that does not parse.
    #[error("{}: {cause}", path.display())]
    Json { path: PathBuf, cause: serde_json::Error },
    /// A JSON file without a field it needs.
    #[error("{}: no `{key}`", path.display())]
    NoKey { path: PathBuf, key: &'static str },
    /// An error about the model directory `dir` (its weights do not fit its config).
    #[error("{}: {cause}", dir.display())]
    InModel { dir: PathBuf, cause: Box<TrainError> },

    // The model.
    #[error("{} has no model.safetensors nor model.safetensors.index.json", dir.display())]
    NoWeights { dir: PathBuf },
    #[error("the weights have no `{name}`")]
    MissingWeight { name: String },
    #[error("{}: `{key}` is missing or not a whole number", path.display())]
    ConfigNumber { path: PathBuf, key: String },
    #[error("{}: model_type {model_type:?} is not one the trainer knows (llama, qwen2, qwen3)", path.display())]
    UnknownArch { path: PathBuf, model_type: String },
    #[error("{}: {heads} attention heads cannot share {kv_heads} key/value heads", path.display())]
    Heads { path: PathBuf, heads: usize, kv_heads: usize },
    #[error("{}: rope scaling {kind:?} is not supported (default, linear and llama3 are)", path.display())]
    RopeScaling { path: PathBuf, kind: String },
    #[error("cannot load the model's tokenizer {}: {cause}", path.display())]
    Tokenizer { path: PathBuf, cause: tokenizers::Error },
    /// Encoding or decoding text with the model's tokenizer failed.
    #[error("{0}")]
    Tokenize(tokenizers::Error),
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The random initialisation's distribution (fixed parameters: never in practice).
    #[error("{0}")]
    Distribution(rand_distr::NormalError),

    // Adapters and checkpoints.
    #[error("{}: not a LoRA adapter (peft_type must be \"LORA\")", path.display())]
    NotLora { path: PathBuf },
    #[error("{}: `{key}: true` is not supported", path.display())]
    UnsupportedLora { path: PathBuf, key: &'static str },
    #[error("{}: no `{name}` (is it an adapter for this model and targets?)", path.display())]
    AdapterLacks { path: PathBuf, name: String },
    #[error("{}: `{name}` has shape {found:?}, the model needs {needed:?}", path.display())]
    AdapterShape { path: PathBuf, name: String, found: Vec<usize>, needed: Vec<usize> },
    #[error("cannot read {}: {cause} (is it a checkpoint directory?)", path.display())]
    NoCheckpoint { path: PathBuf, cause: std::io::Error },
    #[error("the optimizer state has no `{key}`")]
    NoMoment { key: String },
    #[error("`{key}` has shape {found:?}, the adapter {needed:?}")]
    MomentShape { key: String, found: Vec<usize>, needed: Vec<usize> },

    // The device.
    #[error("--device cuda: this retort was built without the `cuda` feature (see scripts/build-cuda.sh)")]
    NoCuda,
    #[error("--device cuda: no usable GPU: {cause}")]
    NoGpu { cause: candle_core::Error },
    /// Built with the `cuda` feature only: the driver refused the memory pool's settings.
    #[error("--device cuda: cannot set up the GPU's allocator: {cause}")]
    GpuAllocator { cause: candle_core::Error },
    #[error("--device {name:?}: expected cpu or cuda")]
    UnknownDevice { name: String },

    // The run and its data.
    #[error("--r must be at least 1")]
    ZeroRank,
    #[error("--grad-accum and --batch-tokens must be at least 1")]
    ZeroBatch,
    #[error("{} has no train.jsonl: give the directory `retort export --out` wrote", export.display())]
    NoTrainFile { export: PathBuf },
    /// Every line was skipped: how many, and the first (`file:line` and why).
    #[error("{}: no training rows{}", data.display(), first_skipped(*.skipped, .first.as_ref()))]
    NoRows { data: PathBuf, skipped: usize, first: Option<(String, Skip)> },
    /// Soft labels that do not line up with the student's tokens: training on them would teach
    /// the wrong tokens.
    #[error("{at}: {cause} (teacher and student tokenizers differ)")]
    ForeignTokenizer { at: String, cause: Misaligned },
    #[error("a teacher token id ({id}) is outside the student's vocabulary ({vocab}): teacher and student tokenizers differ")]
    TeacherId { id: u32, vocab: u32 },
    #[error(transparent)]
    Line(#[from] LineError),
    #[error(transparent)]
    Conversation(#[from] ConversationError),
}

fn first_skipped(skipped: usize, first: Option<&(String, Skip)>) -> String {
    first.map_or_else(String::new, |(at, s)| format!(" ({skipped} skipped; the first, {at}: {s})"))
}

// By hand, not `#[from]`: that would chain the tensor error as a source and `{:#}` would print
// it twice.
impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> Self {
        Self::Tensor(e)
    }
}
