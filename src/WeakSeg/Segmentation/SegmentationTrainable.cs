using TorchSharp;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>
/// Retraining (WeakTr's Segmenter or a DeepLab) as an <see cref="ITrainable"/>: forward the crop, gradient-clipping (or naive) loss against the batch's
/// masks (pseudo labels or ground truth). The clipping decoder does not clip during the first <see cref="SegmentationConfig.ClipWarmupSteps"/> steps. Encoder parameters get <see cref="SegmentationConfig.EncoderLearningRateScale"/>.
/// Trained by the shared <see cref="Trainer"/> with <see cref="SegmentationConfig.ToTrainerOptions"/> (SGD + momentum, poly decay).
/// </summary>
public sealed class SegmentationTrainable(SegmentationNetwork model) : ITrainable
{
    public SegmentationNetwork Segmenter { get; } = model;

    public nn.Module Model => Segmenter;

    public double LearningRateScale(string parameterName) =>
        parameterName.StartsWith(Segmenter.EncoderPrefix, StringComparison.Ordinal) ? Segmenter.Config.EncoderLearningRateScale : 1.0;

    public LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var masks = batch.Masks ?? throw new WeakSegException("segmentation training needs masks in every batch (pseudo labels or ground truth)");
        var c = Segmenter.Config;
        var logits = Segmenter.call(batch.Images);
        // during the clip warm-up no λ_global can be ≤ −∞, so the mask is never applied (plain CE; the parts are still logged)
        double tau = context.Step < c.ClipWarmupSteps ? double.NegativeInfinity : c.ClipStartValue;
        return GradientClippingLoss.Compute(logits, masks, c.Loss, c.ClipSignal, c.ClipPatchSize, tau, c.IgnoredPixels, c.ClipPatchRemainder);
    }
}
