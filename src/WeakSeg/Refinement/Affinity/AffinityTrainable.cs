using TorchSharp;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Affinity;

/// <summary>
/// <see cref="ITrainable"/> of the affinity network: batch masks are affinity-label images (0 background, c class, 255 unsure) at
/// the image size; they are reduced to the feature grid (<see cref="AffinityLabels.Downsample"/>), turned into pair labels within
/// <see cref="Radius"/> and scored with <see cref="AffinityLoss"/>. Loss parts: bg, fg, neg.
/// </summary>
public sealed class AffinityTrainable(AffinityNet net, int numClasses, int radius = 5, double headLearningRateScale = 10) : ITrainable
{
    readonly Dictionary<(int, int), (long[] From, long[] To)> _pairs = new();

    public nn.Module Model => net;
    public AffinityNet Net => net;
    public int Radius => radius;

    /// <summary>Learning-rate multiplier of the new head layers (PSA: 10× for its from-scratch layers).</summary>
    public double LearningRateScale(string parameterName) => parameterName.StartsWith("backbone.", StringComparison.Ordinal) ? 1.0 : headLearningRateScale;

    public LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        if (batch.Masks is null) throw new WeakSegException("affinity training needs label images (TrainBatch.Masks)");
        var terms = Loss(batch.Images, batch.Masks);
        return new LossTerms(terms.Total, [("bg", terms.BackgroundPositive), ("fg", terms.ForegroundPositive), ("neg", terms.Negative)]);
    }

    /// <summary>Loss of images [B, 3, H, W] against label images [B, H, W] (int64).</summary>
    public AffinityLossTerms Loss(Tensor images, Tensor masks)
    {
        var features = net.call(images);                                             // [B, F, h, w]
        int h = (int)features.shape[2], w = (int)features.shape[3];
        var grid = AffinityLabels.Downsample(masks, h, w, numClasses).flatten(1);   // [B, N]
        if (!_pairs.TryGetValue((h, w), out var pairs)) _pairs[(h, w)] = pairs = AffinityPairs.Indices(h, w, radius);
        var from = torch.tensor(pairs.From, device: images.device);
        var to = torch.tensor(pairs.To, device: images.device);
        var labels = AffinityLabels.PairLabels(grid, from, to);
        var affinities = AffinityNet.PairAffinities(features, from, to);             // [B, P]
        return AffinityLoss.Compute(affinities, labels);
    }
}
