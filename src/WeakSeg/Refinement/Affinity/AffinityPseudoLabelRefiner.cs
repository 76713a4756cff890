using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.PseudoLabels;

namespace WeakSeg.Refinement.Affinity;

/// <summary>
/// Pseudo labels from random-walk refined maps (MCTformer psa/infer_aff.py): the background before the walk is the pseudo-label
/// threshold (constant, as MCTformer's bg_thr) unless <see cref="RandomWalkConfig.Background"/> is a power; after the walk the
/// label is the argmax over [background; classes] (threshold 0.5 on <see cref="AffinityInference.RefineMaps"/>' ratios), optionally
/// refined by the dense CRF. The uncertain band applies to the refined ratios.
/// </summary>
public sealed class AffinityPseudoLabelRefiner(AffinityNet net, string dataRoot, RandomWalkConfig? walk = null, DenseCrfConfig? crf = null) : IPseudoLabelRefiner
{
    readonly VocLayout _layout = new(dataRoot);
    readonly RandomWalkConfig _walk = walk ?? new RandomWalkConfig();
    readonly object _gate = new();

    public string Description => "random walk" + (crf is null ? "" : " + dense CRF");
    public int MaxParallelism => 1;

    public LabelMap Label(CamMaps maps, PseudoLabelConfig config)
    {
        var imagePath = _layout.ImagePath(maps.Name);
        try
        {
            var image = ImageCodec.Load(imagePath);
            var walk = _walk.Background == MapBackground.Threshold ? _walk with { BackgroundThreshold = config.Threshold } : _walk;
            CamMaps refined;
            lock (_gate) refined = AffinityInference.RefineMaps(net, image, maps, walk);
            var labels = crf is null
                ? CamToLabel.Convert(refined, 0.5f)
                : CrfPostProcessing.RefineMaps(refined, image, new CrfMapOptions { Threshold = 0.5f, Crf = crf });
            return CrfPseudoLabelRefiner.ApplyUncertainBand(labels, refined, config.Uncertain);
        }
        catch (WeakSegException e) { throw new WeakSegException($"{imagePath}: {e.Message}"); }
    }
}
