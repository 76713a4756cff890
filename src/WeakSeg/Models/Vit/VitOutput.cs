using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Models.Vit;

/// <summary>
/// What a <see cref="VisionTransformer"/> forward returns. Owns its tensors: dispose it, or let the enclosing dispose scope do so.
/// </summary>
/// <param name="ClassTokens">[B, C, D] final class-token embeddings.</param>
/// <param name="PatchTokens">[B, N, D] final patch-token embeddings, N = GridHeight·GridWidth in row-major order.</param>
/// <param name="GridHeight">Patch rows h.</param>
/// <param name="GridWidth">Patch columns w.</param>
/// <param name="Attentions">Per block, post-softmax attention [B, H, T, T] with T = C + N (class tokens first).</param>
/// <param name="AttentionOutputs">Per block, the attention branch's output o = proj(softmax(qkᵀ)v) [B, T, D] before the residual add
/// (empty when the producer does not record it).</param>
/// <param name="ClassTokensPerBlock">Per block, the class tokens [B, C, D] leaving it (before any final norm; the last equals
/// <paramref name="ClassTokens"/> when no final norm is applied); empty when the producer does not record them.</param>
public sealed record VitOutput(Tensor ClassTokens, Tensor PatchTokens, int GridHeight, int GridWidth, IReadOnlyList<Tensor> Attentions,
    IReadOnlyList<Tensor>? AttentionOutputs = null, IReadOnlyList<Tensor>? ClassTokensPerBlock = null) : IDisposable
{
    /// <summary><see cref="AttentionOutputs"/>, or an empty list.</summary>
    public IReadOnlyList<Tensor> BlockAttentionOutputs => AttentionOutputs ?? [];

    /// <summary><see cref="ClassTokensPerBlock"/>, or an empty list.</summary>
    public IReadOnlyList<Tensor> BlockClassTokens => ClassTokensPerBlock ?? [];

    public int NumClassTokens => (int)ClassTokens.shape[1];

    /// <summary>Patch tokens as a feature map [B, D, h, w].</summary>
    public Tensor PatchGrid() => PatchTokens.transpose(1, 2).reshape(PatchTokens.shape[0], PatchTokens.shape[2], GridHeight, GridWidth);

    /// <summary>All attentions stacked: [L, B, H, T, T].</summary>
    public Tensor StackedAttentions() => torch.stack(Attentions, 0);

    /// <summary>Moves every tensor to the enclosing dispose scope (call before leaving a scope that created them).</summary>
    public VitOutput MoveToOuterDisposeScope()
    {
        ClassTokens.MoveToOuterDisposeScope();
        PatchTokens.MoveToOuterDisposeScope();
        foreach (var a in Attentions) a.MoveToOuterDisposeScope();
        foreach (var o in BlockAttentionOutputs) o.MoveToOuterDisposeScope();
        foreach (var t in BlockClassTokens) t.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Detaches every tensor from all dispose scopes (the caller disposes it).</summary>
    public VitOutput DetachFromDisposeScope()
    {
        ClassTokens.DetachFromDisposeScope();
        PatchTokens.DetachFromDisposeScope();
        foreach (var a in Attentions) a.DetachFromDisposeScope();
        foreach (var o in BlockAttentionOutputs) o.DetachFromDisposeScope();
        foreach (var t in BlockClassTokens) t.DetachFromDisposeScope();
        return this;
    }

    public void Dispose()
    {
        ClassTokens.Dispose();
        PatchTokens.Dispose();
        foreach (var a in Attentions) a.Dispose();
        foreach (var o in BlockAttentionOutputs) o.Dispose();
        foreach (var t in BlockClassTokens) t.Dispose();
    }
}
