using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.PseudoLabels;

namespace WeakSeg.Refinement;

/// <summary>
/// Pseudo labels refined by the dense CRF: unary from the scores [threshold; maps] (PSA crf_inference style, the background
/// plane being the pseudo-label threshold), argmax of the CRF marginals; the uncertain band (if any) is then applied from the
/// maps' maximum score, as without CRF. Images come from the VOC-layout dataset at <paramref name="dataRoot"/>.
/// </summary>
public sealed class CrfPseudoLabelRefiner(string dataRoot, DenseCrfConfig? crf = null, string presetName = "psa") : IPseudoLabelRefiner
{
    readonly VocLayout _layout = new(dataRoot);
    readonly DenseCrfConfig _crf = (crf ?? DenseCrfConfig.Psa) with { MaxThreads = (crf ?? DenseCrfConfig.Psa).MaxThreads ?? 1 };

    public string Description => $"dense CRF ({presetName})";
    public int MaxParallelism => Environment.ProcessorCount;

    public LabelMap Label(CamMaps maps, PseudoLabelConfig config)
    {
        var imagePath = _layout.ImagePath(maps.Name);
        LabelMap labels;
        try { labels = CrfPostProcessing.RefineMaps(maps, ImageCodec.Load(imagePath), new CrfMapOptions { Threshold = config.Threshold, Crf = _crf }); }
        catch (WeakSegException e) { throw new WeakSegException($"{imagePath}: {e.Message}"); }
        return ApplyUncertainBand(labels, maps, config.Uncertain);
    }

    /// <summary>Pixels whose maximum map score lies in the band become 255.</summary>
    public static LabelMap ApplyUncertainBand(LabelMap labels, CamMaps maps, UncertainBand? band)
    {
        if (band is not { } b) return labels;
        var (max, _) = CamToLabel.MaxOverClasses(maps);
        for (int i = 0; i < max.Length; i++) if (b.Contains(max[i])) labels.Labels[i] = LabelMap.Ignore;
        return labels;
    }
}
