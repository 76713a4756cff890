using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.AuxSegNet;

/// <summary>
/// The affinities of AuxSegNet(+) as plain functions over feature maps [B, C, h, w] with N = h·w pixels in row-major order.
/// Pairwise (official NLBlock): A = softmax_row(θ(F)ᵀ φ(F)) [B, N, N], row i = query pixel i. Unary (AuxSegNet+, whose exact form
/// the paper's abstract does not give; WeakSeg uses the GCNet-style global context): u = softmax over the N pixels of a 1×1 conv
/// C → 1 [B, N], a query-independent weighting of the pixels, i.e. the affinity matrix 1·uᵀ whose rows are all u.
/// </summary>
public static class AuxSegNetAffinity
{
    /// <summary>Pairwise affinity: softmax over j of Σ_c θ(F)[c, i] φ(F)[c, j], divided by √d first when <paramref name="scaled"/>
    /// (a correction; the official code does not scale). → [B, N, N].</summary>
    public static Tensor Pairwise(Tensor features, Conv2d theta, Conv2d phi, bool scaled)
    {
        using var scope = torch.NewDisposeScope();
        var q = theta.call(features).flatten(2).transpose(1, 2);                    // [B, N, d]
        var k = phi.call(features).flatten(2);                                      // [B, d, N]
        var logits = q.bmm(k);
        if (scaled) logits = logits.div(Math.Sqrt(q.shape[2]));
        return logits.softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Unary (query-independent) affinity: softmax over the N pixels of <paramref name="mask"/>(F) (1×1 conv C → 1). → [B, N].</summary>
    public static Tensor Unary(Tensor features, Conv2d mask)
    {
        using var scope = torch.NewDisposeScope();
        return mask.call(features).flatten(1).softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Global context of a unary affinity: Σ_i u_i F[:, i] → [B, C, 1, 1] (the same vector for every query pixel).</summary>
    public static Tensor Context(Tensor unary, Tensor features)
    {
        using var scope = torch.NewDisposeScope();
        return features.flatten(2).bmm(unary.unsqueeze(2)).unsqueeze(3).MoveToOuterDisposeScope();   // [B, C, N]·[B, N, 1]
    }

    /// <summary>Propagation of a map [B, C, h, w] by an affinity [B, N, N]: out[:, i] = Σ_j A[i, j] x[:, j].</summary>
    public static Tensor Propagate(Tensor affinity, Tensor maps)
    {
        using var scope = torch.NewDisposeScope();
        var (b, c, h, w) = (maps.shape[0], maps.shape[1], maps.shape[2], maps.shape[3]);
        return affinity.bmm(maps.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w).MoveToOuterDisposeScope();
    }

    /// <summary>Cross-task fusion weights: <paramref name="weighting"/> (conv → ReLU → 1×1 conv) over the two affinities stacked as a
    /// 2-channel image, softmax over the 2 channels. pairwise [B, N, N] each → ω [B, 2, N, N]; unary [B, N] each → ω [B, 2, 1, N].</summary>
    public static Tensor CrossTaskWeights(Tensor segmentation, Tensor saliency, Sequential weighting)
    {
        using var scope = torch.NewDisposeScope();
        var stacked = segmentation.dim() == 2
            ? torch.stack([segmentation, saliency], 1).unsqueeze(2)                 // [B, 2, 1, N]
            : torch.stack([segmentation, saliency], 1);                             // [B, 2, N, N]
        return weighting.call(stacked).softmax(1).MoveToOuterDisposeScope();
    }

    /// <summary>ω₀ ⊙ seg + ω₁ ⊙ sal for weights from <see cref="CrossTaskWeights"/> (the unit axis of a unary weighting dropped).</summary>
    public static Tensor Fuse(Tensor weights, Tensor segmentation, Tensor saliency)
    {
        using var scope = torch.NewDisposeScope();
        var w = segmentation.dim() == 2 ? weights.squeeze(2) : weights;
        return w[.., 0].mul(segmentation).add_(w[.., 1].mul(saliency)).MoveToOuterDisposeScope();
    }
}
