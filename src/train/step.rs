//! A batch of token rows and the loss over it.

use candle_core::{Device, Tensor};

use super::loss::{self, KdWeights, SoftTargets};
use super::model::{LoraGrads, Model, Result};

/// The teacher's top-k at one target token: ids and log-probs.
pub type TopK = (Vec<u32>, Vec<f32>);

/// One training row: token ids and, per token, whether it is a target (an assistant token).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ids: Vec<u32>,
    pub target: Vec<bool>,
    /// For soft-label rows: per target token, in order, the teacher's top-k `(ids, logprobs)`
    /// where the teacher gave them (`None`: plain cross-entropy there).
    pub soft: Option<Vec<Option<TopK>>>,
}

/// Rows padded on the right to one length, with the positions that carry loss.
pub struct Batch {
    pub ids: Tensor,
    /// Flat indices (`row * len + t`) of the positions whose next token is a target.
    pub positions: Tensor,
    pub labels: Tensor,
    pub soft: Option<SoftTargets>,
    /// Targets in the batch (the loss is summed over these).
    pub loss_tokens: usize,
    /// Real (unpadded) tokens in the batch.
    pub tokens: usize,
}

impl Batch {
    /// Rows by value or by reference (a training step borrows them from the dataset).
    pub fn new<R: std::borrow::Borrow<Row>>(rows: &[R], pad: u32, device: &Device) -> Result<Self> {
        let rows: Vec<&Row> = rows.iter().map(std::borrow::Borrow::borrow).collect();
        let len = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * len);
        let (mut positions, mut labels) = (Vec::new(), Vec::new());
        let soft_rows = rows.iter().any(|r| r.soft.is_some());
        let (mut soft_ids, mut soft_lp, mut soft_mask, mut k) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
        for (i, row) in rows.iter().enumerate() {
            ids.extend(&row.ids);
            ids.extend(std::iter::repeat_n(pad, len - row.ids.len()));
            let mut next_soft = row.soft.as_ref().map(|s| s.iter());
            for t in 1..row.ids.len() {
                if !row.target[t] {
                    continue;
                }
                positions.push((i * len + t - 1) as u32);
                labels.push(row.ids[t]);
                if soft_rows {
                    // Where the teacher gave nothing, a placeholder masked out of the KD term.
                    if let Some((sid, slp)) = next_soft.as_mut().and_then(Iterator::next).and_then(Option::as_ref) {
                        k = k.max(sid.len());
                        soft_ids.push(sid.clone());
                        soft_lp.push(slp.clone());
                        soft_mask.push(1f32);
                    } else {
                        soft_ids.push(vec![row.ids[t]]);
                        soft_lp.push(vec![0.0]);
                        soft_mask.push(0f32);
                    }
                }
            }
        }
        let soft = if soft_rows {
            // Pad each position's top-k to the widest with a log-prob of -1e9: weight 0 after the
            // softmax, where -inf would make 0·inf = NaN.
            let n = soft_ids.len();
            let mut flat_ids = Vec::with_capacity(n * k);
            let mut flat_lp = Vec::with_capacity(n * k);
            for (sid, slp) in soft_ids.iter().zip(&soft_lp) {
                for j in 0..k {
                    flat_ids.push(sid.get(j).copied().unwrap_or(sid[0]));
                    flat_lp.push(slp.get(j).copied().unwrap_or(-1e9));
                }
            }
            Some(SoftTargets {
                ids: Tensor::from_vec(flat_ids, (n, k), device)?,
                logprobs: Tensor::from_vec(flat_lp, (n, k), device)?,
                mask: Some(Tensor::from_vec(soft_mask, n, device)?),
            })
        } else {
            None
        };
        let loss_tokens = labels.len();
        Ok(Self {
            ids: Tensor::from_vec(ids, (rows.len(), len), device)?,
            positions: Tensor::from_vec(positions, loss_tokens, device)?,
            labels: Tensor::from_vec(labels, loss_tokens, device)?,
            soft,
            loss_tokens,
            tokens: rows.iter().map(|r| r.ids.len()).sum(),
        })
    }
}

/// The loss summed over the batch's targets and divided by `per` (the target count of the
/// whole optimizer step, for its mean; 1 for the sum). With `kd` and soft targets, the
/// distillation loss. Forward only (validation).
pub fn batch_loss(model: &Model, batch: &Batch, kd: Option<KdWeights>, per: usize) -> Result<Tensor> {
    targets_loss(model, batch, kd, per, &model.hidden(&batch.ids, None)?, false)?.0.sum_all()
}

/// The loss head at the batch's target positions of the hidden states `[b, t, hidden]`: the
/// loss per target divided by `per` (the distillation loss with `kd` and soft targets) and,
/// with `grad`, its gradient with respect to the picked hidden states.
fn targets_loss(
    model: &Model,
    batch: &Batch,
    kd: Option<KdWeights>,
    per: usize,
    hidden: &Tensor,
    grad: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let (b, t, h) = hidden.dims3()?;
    let picked = hidden.reshape((b * t, h))?.index_select(&batch.positions, 0)?;
    loss::linear_loss(&picked, model.lm_head(), &batch.labels, batch.soft.as_ref().zip(kd), 1.0 / per.max(1) as f64, grad)
}

/// [`batch_loss`] of a training step (LoRA dropout on) and the LoRA variables' gradients of it.
pub fn loss_and_grads(model: &Model, batch: &Batch, kd: Option<KdWeights>, per: usize) -> Result<(Tensor, LoraGrads)> {
    let (hidden, tape) = model.forward_train(&batch.ids)?;
    let (loss, d_hidden) = head(model, batch, kd, per, &hidden)?;
    Ok((loss, model.backward(tape, &d_hidden)?))
}

/// The loss of [`batch_loss`] from the final hidden states `[b, t, hidden]`, and its gradient
/// with respect to them.
pub fn head(model: &Model, batch: &Batch, kd: Option<KdWeights>, per: usize, hidden: &Tensor) -> Result<(Tensor, Tensor)> {
    let (b, t, h) = hidden.dims3()?;
    let (per_position, d_picked) = targets_loss(model, batch, kd, per, hidden, true)?;
    let d_picked = d_picked.ok_or_else(|| candle_core::Error::Msg("the loss head computed no gradient".into()))?;
    // Back to every position (zero where no target).
    let d_hidden =
        Tensor::zeros((b * t, h), hidden.dtype(), hidden.device())?.index_add(&batch.positions, &d_picked.to_dtype(hidden.dtype())?, 0)?;
    Ok((per_position.sum_all()?, d_hidden.reshape((b, t, h))?))
}
