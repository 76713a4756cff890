using TorchSharp;
using WeakSeg.Methods.Localization;
using WeakSeg.Models;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormerPlus;

/// <summary>The MCTformer+ training loss (pure functions): what <see cref="MctFormerPlusMethod.ComputeLoss"/> trains with.</summary>
public static class MctFormerPlusLoss
{
    /// <summary>Added to the present-class count before dividing by it (official), so an image without labels contributes 0.</summary>
    public const double PresentCountEps = 1e-8;

    /// <summary>
    /// Contrastive class-token loss. Z = the class tokens of the last K blocks [K, B, C, D], L2-normalised over D; S = Ẑ Ẑᵀ
    /// [K, B, C, C] (cosine, no temperature); ℓ(k, b, c) = −log(e^S_cc / Σ_c' e^S_c'c), a cross entropy over the C tokens whose target
    /// is the token itself; loss = mean over images of mean_k Σ_c y_bc ℓ(k, b, c) / (Σ_c y_bc + 1e-8). Present classes are the
    /// anchors; every token, absent classes included, is a negative. labels [B, C] in {0, 1} → scalar.
    /// </summary>
    public static Tensor ContrastiveClassTokens(Tensor classTokens, Tensor labels)
    {
        if (classTokens.dim() != 4 || labels.dim() != 2 || classTokens.shape[1] != labels.shape[0] || classTokens.shape[2] != labels.shape[1])
            throw new WeakSegException($"class tokens [K, B, C, D] and labels [B, C] do not match: [{string.Join(", ", classTokens.shape)}] and [{string.Join(", ", labels.shape)}]");
        using var scope = torch.NewDisposeScope();
        var z = nn.functional.normalize(classTokens, p: 2, dim: -1);                                 // [K, B, C, D]
        var similarity = torch.matmul(z, z.transpose(-2, -1));                                     // [K, B, C, C], symmetric
        var logProbabilities = similarity.log_softmax(2);                                          // softmax over c' for each column c
        var selfTerms = logProbabilities.diagonal(0, 2, 3).neg();                                   // [K, B, C]: ℓ(k, b, c)
        var y = labels.to_type(classTokens.dtype);
        var perLayer = selfTerms.mul(y.unsqueeze(0)).sum(new long[] { -1 });                         // [K, B]
        using var eps = PresentCountEps.ToScalar();                                                  // held until the end: see StableScalars
        var perImage = perLayer.mean(new long[] { 0 }).div(y.sum(new long[] { -1 }).add(eps, StableScalars.One));   // [B]
        return perImage.mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// L = MLSM(class-token logits) + λ·CCT(class tokens of the last <paramref name="cctLayers"/> blocks) + MLSM(GWRP PatchCAM logits),
    /// with the parts named "cls", "cct" and "patch". labels [B, C] in {0, 1}. Call inside the step's dispose scope.
    /// </summary>
    public static LossTerms Compute(MctFormerPlusOutput output, Tensor labels, int cctLayers, double cctWeight)
    {
        var blocks = output.Backbone.BlockClassTokens;
        if (cctLayers < 1 || cctLayers > blocks.Count) throw new WeakSegException($"CCT layers must be in [1, {blocks.Count}] (got {cctLayers})");
        var classLoss = ClassificationLoss.MultilabelSoftMargin(output.ClassLogits, labels);
        var lastBlocks = torch.stack(blocks.Skip(blocks.Count - cctLayers), 0);                       // [K, B, C, D]
        var contrast = ContrastiveClassTokens(lastBlocks, labels);
        var patchLoss = ClassificationLoss.MultilabelSoftMargin(output.PatchLogits, labels);
        using var weight = cctWeight.ToScalar();
        var total = StableScalars.Add(StableScalars.Add(classLoss, contrast.mul(weight)), patchLoss);   // not `+`: see StableScalars
        return new LossTerms(total, [("cls", classLoss), ("cct", contrast), ("patch", patchLoss)]);
    }
}
