using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.MoRe;

/// <summary>How the GCR gate scores its top-k neighbours.</summary>
public enum GcrNeighbourScore
{
    /// <summary>
    /// Reference (MoRe model/GCA.py): einsum('ijkl,ijkm->ijk', Nb, gate) sums the two D axes independently, so the score of
    /// a neighbour is (Σ_D Nb)·(Σ_D gate).
    /// </summary>
    Reference,

    /// <summary>The gated dot product Σ_D(Nb ⊙ gate) the gate is meant to compute.</summary>
    DotProduct,
}

/// <summary>
/// Graph category representation (GCR, MoRe's graphic_cls_aggregation). Class tokens Q [B, K, D] are the heads; the tails are
/// [Q; P] with the patch tokens P detached. e_h = head_proj(Q), e_t = tail_proj([Q; P]); logits A = (e_h·D^-½)·e_tᵀ
/// [B, K, K+N]; each class keeps its top-k tails Nb (k = int(ratio·K)) with p = softmax of their logits; r = (1 − p)·e_h + p·Nb,
/// gate = tanh(e_h + r), α = softmax_k(score(Nb, gate)), e_N = Σ_k α·Nb; out = LayerNorm(LeakyReLU(linear1(0.1·(e_h + e_N) + Q))
/// + LeakyReLU(linear2(0.1·(e_h ⊙ e_N) + Q))). Keys head_proj, tail_proj, linear1, linear2, norm (the reference's unused
/// _fc1 is not built). LayerNorm eps 1e-5, LeakyReLU slope 0.01, no dropout.
/// </summary>
public sealed class GraphClassAggregation : Module<Tensor, Tensor, Tensor>
{
    readonly Linear head_proj;
    readonly Linear tail_proj;
    readonly Linear linear1;
    readonly Linear linear2;
    readonly LayerNorm norm;
    readonly double _scale;
    readonly int? _topK;

    /// <param name="topK">a fixed neighbour count instead of int(ratio·K); must not exceed the K + N tokens of a forward pass</param>
    public GraphClassAggregation(int dim, double topKRatio = 0.5, GcrNeighbourScore score = GcrNeighbourScore.Reference, int? topK = null)
        : base(nameof(GraphClassAggregation))
    {
        if (!(topKRatio > 0 && topKRatio <= 1)) throw new WeakSegException($"GCR top-k ratio must be in (0, 1] (got {topKRatio})");
        if (topK is < 1) throw new WeakSegException($"GCR top-k must be ≥ 1 (got {topK})");
        _topK = topK;
        TopKRatio = topKRatio;
        Score = score;
        _scale = Math.Pow(dim, -0.5);
        head_proj = Linear(dim, dim);
        tail_proj = Linear(dim, dim);
        linear1 = Linear(dim, dim);
        linear2 = Linear(dim, dim);
        norm = LayerNorm(dim);
        RegisterComponents();
    }

    public double TopKRatio { get; }

    public GcrNeighbourScore Score { get; }

    /// <summary>Neighbours kept per class for K class tokens: the fixed count, else int(ratio·K).</summary>
    public int TopK(long classTokens) => _topK ?? (int)(TopKRatio * classTokens);

    /// <summary>Head and tail embeddings (e_h [B, K, D], e_t [B, K+N, D]) with the patch tokens detached.</summary>
    public (Tensor Heads, Tensor Tails) Embeddings(Tensor classTokens, Tensor patchTokens)
    {
        using var scope = torch.NewDisposeScope();
        var tails = torch.cat(new[] { classTokens, patchTokens.detach() }, 1);
        var eh = head_proj.call(classTokens);
        var et = tail_proj.call(tails);
        return (eh.MoveToOuterDisposeScope(), et.MoveToOuterDisposeScope());
    }

    /// <summary>classTokens [B, K, D], patchTokens [B, N, D] → refined class tokens [B, K, D].</summary>
    public override Tensor forward(Tensor classTokens, Tensor patchTokens)
    {
        if (classTokens.dim() != 3 || patchTokens.dim() != 3 || classTokens.shape[0] != patchTokens.shape[0] || classTokens.shape[2] != patchTokens.shape[2])
            throw new WeakSegException($"GCR needs class tokens [B, K, D] and patch tokens [B, N, D]; got [{string.Join(", ", classTokens.shape)}] and [{string.Join(", ", patchTokens.shape)}]");
        long b = classTokens.shape[0], k = classTokens.shape[1], n = patchTokens.shape[1], d = classTokens.shape[2];
        int topK = TopK(k);
        if (topK < 1 || topK > k + n)
            throw new WeakSegException($"GCR top-k {topK} must be between 1 and the token count {k + n} ({k} class + {n} patch tokens)");
        using var scope = torch.NewDisposeScope();
        var (eh, et) = Embeddings(classTokens, patchTokens);
        using var scale = _scale.ToScalar();
        var logits = torch.matmul(eh.mul(scale), et.transpose(1, 2));                         // [B, K, K+N]
        var (topLogits, topIndex) = logits.topk(topK, dim: -1);                                 // [B, K, k]
        var neighbours = et.unsqueeze(1).expand(b, k, k + n, d)
            .gather(2, topIndex.unsqueeze(-1).expand(b, k, topK, d));                           // [B, K, k, D]
        var p = topLogits.softmax(2).unsqueeze(-1);                                             // [B, K, k, 1]
        var heads = eh.unsqueeze(2);                                                            // [B, K, 1, D]
        using var one = 1.0.ToScalar();
        var relation = StableScalars.Add(p.neg().add(one).mul(heads), p.mul(neighbours));      // [B, K, k, D]
        var gate = StableScalars.Add(heads, relation).tanh();
        var score = Score == GcrNeighbourScore.Reference
            ? neighbours.sum(-1).mul(gate.sum(-1))
            : neighbours.mul(gate).sum(-1);                                                     // [B, K, k]
        var alpha = score.softmax(2).unsqueeze(2);                                              // [B, K, 1, k]
        var aggregated = torch.matmul(alpha, neighbours).squeeze(2);                            // [B, K, D]
        using var tenth = 0.1.ToScalar();
        var sum = functional.leaky_relu(linear1.call(StableScalars.Add(StableScalars.Add(eh, aggregated).mul(tenth), classTokens)), 0.01);
        var product = functional.leaky_relu(linear2.call(StableScalars.Add(eh.mul(aggregated).mul(tenth), classTokens)), 0.01);
        return norm.call(StableScalars.Add(sum, product)).MoveToOuterDisposeScope();
    }
}
