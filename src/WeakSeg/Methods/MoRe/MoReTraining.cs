using TorchSharp;
using WeakSeg.Methods.ToCo;
using WeakSeg.Models;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MoRe;

/// <summary>The MoRe training loss of one step (scripts/train_voc.py), as one function.</summary>
public static class MoReTraining
{
    /// <summary>
    /// Total loss at 0-based step <paramref name="step"/> (each weight 0 before its start step; the term is then not computed):
    ///   w_cls·MLSM(cls) + w_aux·MLSM(cls_aux) + w_attri·uniqueness(GCR tokens) + w_ptc·PTC + w_cle·CRE + w_une·URE + w_seg·SEG.
    /// <see cref="MoReConfig.UseGcr"/> off: the class tokens skip GCR; <see cref="MoReConfig.UseLir"/> off: CRE and URE are not computed.
    /// PTC labels: aux CAM at the token grid with 0.7 / 0.25 (MoRe's threshold order). CRE / URE masks: aux CAM with the early
    /// thresholds up to <see cref="MoReConfig.CamToMaskStep"/>, then the final CAM with the late ones. SEG: <see cref="SegmentationLabels"/>
    /// (PAR-refined CAM as the official scripts, or LAM) with MoRe's count + 1e-6 reduction. <paramref name="random"/> drives URE's token
    /// choice. Parts: cls, cls_aux, attri, ptc, cle, une, seg.
    /// </summary>
    public static LossTerms Loss(MoReNetwork network, PixelAdaptiveRefinement par, Tensor images, Tensor classLabels, long step, Random random)
    {
        var config = network.Config;
        if (classLabels.dim() != 2 || classLabels.shape[0] != images.shape[0] || classLabels.shape[1] != config.NumClasses)
            throw new WeakSegException($"labels must be [{images.shape[0]}, {config.NumClasses}] (batch × classes); got [{string.Join(", ", classLabels.shape)}]");
        var labels = classLabels.to_type(ScalarType.Float32);
        var (cam, auxCam) = MoReMaps.MultiScaleCam(network, images, config.CamScales);
        var output = network.call(images);
        var grid = new[] { output.FeatureMap.shape[2], output.FeatureMap.shape[3] };
        Tensor TokenLabel(Tensor source, double high, double low)
        {
            var resized = nn.functional.interpolate(source, size: grid, mode: InterpolationMode.Bilinear, align_corners: false);
            return ToCoPseudoLabels.CamToLabel(resized, labels, config.BandOptions(high, low)).Label;
        }

        var loss = new WeightedLossSum();

        double w;
        if ((w = config.Classification.At(step)) > 0) loss.Add("cls", w, ToCoLoss.MultilabelSoftMargin(output.ClassLogits, labels));
        if ((w = config.AuxClassification.At(step)) > 0) loss.Add("cls_aux", w, ToCoLoss.MultilabelSoftMargin(output.AuxLogits, labels));
        if ((w = config.Uniqueness.At(step)) > 0) loss.Add("attri", w, MoReLoss.ClassTokenUniqueness(output.AttributeTokens));
        if ((w = config.PatchContrast.At(step)) > 0)
        {
            var affinity = ToCoPseudoLabels.LabelToAffinityMask(TokenLabel(auxCam, config.HighThreshold, config.LowThreshold));
            loss.Add("ptc", w, ToCoLoss.MaskedPatchContrast(output.FeatureMap, affinity));
        }
        bool early = step <= config.CamToMaskStep;
        if (config.UseLir && (w = config.ConfidentRelation.At(step)) > 0)
        {
            var mask = early ? TokenLabel(auxCam, config.EarlyConfidentThresholds.High, config.EarlyConfidentThresholds.Low)
                : TokenLabel(cam, config.LateRelationThresholds.High, config.LateRelationThresholds.Low);
            loss.Add("cle", w, MoReLoss.ConfidentRelation(output.AttributeTokens, output.FeatureMap, mask, labels, config.CreTemperature));
        }
        if (config.UseLir && (w = config.UncertainRelation.At(step)) > 0)
        {
            var mask = early ? TokenLabel(auxCam, config.EarlyUncertainThresholds.High, config.EarlyUncertainThresholds.Low)
                : TokenLabel(cam, config.LateRelationThresholds.High, config.LateRelationThresholds.Low);
            var (ure, _) = MoReLoss.UncertainRelation(output.AttributeTokens, output.FeatureMap, mask, labels,
                (_, n) => Permutation(random, n), config.UncertainTokens, config.UncertainTokenPosition);
            loss.Add("une", w, ure);
        }
        if ((w = config.Segmentation.At(step)) > 0)
        {
            var refined = SegmentationLabels(network, par, images, labels, cam);
            var logits = nn.functional.interpolate(output.Segmentation, size: new[] { refined.shape[1], refined.shape[2] },
                mode: InterpolationMode.Bilinear, align_corners: false);
            loss.Add("seg", w, ToCoLoss.Segmentation(logits, refined, config.SegmentationReduction));
        }
        return loss.ToLossTerms("MoRe", step);
    }

    /// <summary>
    /// The segmentation loss's labels [B, H, W] (0 background, 1..C, 255 ignored): the two-level PAR-refined labels
    /// (refine_cams_with_bkg_v2, 0.7 / 0.25) of the step's multi-scale final <paramref name="cam"/> [B, C, H, W] (official scripts), or
    /// with <see cref="MoReSegmentationLabels.Lam"/> of the multi-scale LAM at <see cref="MoReConfig.CamScales"/> (the paper).
    /// </summary>
    public static Tensor SegmentationLabels(MoReNetwork network, PixelAdaptiveRefinement par, Tensor images, Tensor labels, Tensor cam)
    {
        var config = network.Config;
        using var scope = torch.NewDisposeScope();
        var maps = config.SegmentationLabels == MoReSegmentationLabels.Lam ? MoReMaps.MultiScaleLam(network, images, config.CamScales) : cam;
        var (validMaps, _) = ToCoPseudoLabels.CamToLabel(maps, labels, config.BandOptions(config.HighThreshold, config.LowThreshold));
        return ToCoPseudoLabels.RefineCamsWithBackground(par, ToCoPseudoLabels.DenormalizeImages(images), validMaps, labels,
            config.HighThreshold, config.LowThreshold, imageBox: null, config.ParDownScale).MoveToOuterDisposeScope();
    }

    /// <summary>A uniformly random permutation of 0..n−1 (Fisher–Yates on the step's managed RNG, so resumed runs repeat it).</summary>
    public static IReadOnlyList<long> Permutation(Random random, int n)
    {
        var order = new long[n];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}

/// <summary>Adapter to the shared <see cref="Trainer"/>: <see cref="MoReTraining.Loss"/>, heads and GCR at <see cref="MoReConfig.HeadLearningRateScale"/>×.</summary>
public sealed class MoReTrainable(MoReNetwork network) : ITrainable
{
    readonly PixelAdaptiveRefinement _par = new(network.Config.Par);

    public nn.Module Model => network;

    public MoReNetwork Network => network;

    public LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) =>
        MoReTraining.Loss(network, _par, batch.Images, batch.Labels, context.Step, context.Random);

    public double LearningRateScale(string parameterName) =>
        network.IsHeadParameter(parameterName) ? network.Config.HeadLearningRateScale : 1.0;
}
