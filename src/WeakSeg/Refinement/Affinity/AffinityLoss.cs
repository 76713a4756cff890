using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Affinity;

/// <summary>The three PSA loss terms and their weighted sum (scalar tensors).</summary>
public sealed record AffinityLossTerms(Tensor Total, Tensor BackgroundPositive, Tensor ForegroundPositive, Tensor Negative);

/// <summary>
/// PSA's affinity loss (jiwoon-ahn/psa train_aff.py, also MCTformer psa/train_aff.py): each term is averaged over its own pairs,
/// bg = Σ −log(a + 1e-5)·bg / (Σ bg + 1e-5), fg likewise, neg = Σ −log(1 + 1e-5 − a)·neg / (Σ neg + 1e-5);
/// loss = bg/4 + fg/4 + neg/2.
/// </summary>
public static class AffinityLoss
{
    /// <summary>Small constant inside the logs and in the pair counts (PSA: 1e-5).</summary>
    public const double Epsilon = 1e-5;

    /// <param name="affinities">[B, P] in (0, 1]</param>
    /// <param name="labels">masks [B, P] from <see cref="AffinityLabels.PairLabels"/></param>
    public static AffinityLossTerms Compute(Tensor affinities, AffinityPairLabels labels)
    {
        using var scope = torch.NewDisposeScope();
        var bg = (labels.BackgroundPositive * -(affinities + Epsilon).log()).sum() / (labels.BackgroundPositive.sum() + Epsilon);
        var fg = (labels.ForegroundPositive * -(affinities + Epsilon).log()).sum() / (labels.ForegroundPositive.sum() + Epsilon);
        var neg = (labels.Negative * -(1.0 + Epsilon - affinities).log()).sum() / (labels.Negative.sum() + Epsilon);
        var total = bg / 4 + fg / 4 + neg / 2;
        return new AffinityLossTerms(total.MoveToOuterDisposeScope(), bg.MoveToOuterDisposeScope(), fg.MoveToOuterDisposeScope(), neg.MoveToOuterDisposeScope());
    }
}
