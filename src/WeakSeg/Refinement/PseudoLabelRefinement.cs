using WeakSeg.PseudoLabels;
using WeakSeg.Refinement.Affinity;
using WeakSeg.Refinement.Par;
using WeakSeg.Runtime;

namespace WeakSeg.Refinement;

/// <summary>
/// The refinement <c>weakseg pseudo</c> applies to saved maps before writing labels, and the one place that builds its
/// <see cref="IPseudoLabelRefiner"/>: PAR on its own, or an affinity run's random walk (optionally followed by the dense CRF), or the
/// dense CRF alone, or none. Every refinement reads the images, so it needs <see cref="DataRoot"/>.
/// </summary>
public sealed record PseudoLabelRefinement
{
    /// <summary>ToCo's pixel-adaptive refinement (<see cref="ParPseudoLabelRefiner"/>); not with the CRF or an affinity run.</summary>
    public bool Par { get; init; }

    /// <summary>PAR runs at 1/N of the image size (ToCo's training labels: 2).</summary>
    public int ParDownScale { get; init; } = 1;

    /// <summary>The dense CRF with the kernels of <see cref="CrfPreset"/>.</summary>
    public bool Crf { get; init; }

    public string CrfPreset { get; init; } = "psa";

    /// <summary>An affinity run (<c>weakseg affinity train</c>) whose random walk refines the maps first.</summary>
    public string? AffinityRun { get; init; }

    /// <summary>Dataset root in VOC layout (the images).</summary>
    public string? DataRoot { get; init; }

    /// <summary>The random walk's settings given the affinity run's radius (null: the walk's defaults at that radius).</summary>
    public Func<int, RandomWalkConfig>? Walk { get; init; }

    /// <summary>The refiner, or null for none. Errors name the option that is missing or in conflict.</summary>
    public IPseudoLabelRefiner? Create()
    {
        if (Par)
        {
            if (Crf || AffinityRun != null) throw new WeakSegException("--par refines on its own: drop --crf and --affinity");
            var parData = DataRoot ?? throw new WeakSegException("--par needs the images: pass --data ROOT");
            TorchRuntime.Initialize("cpu");
            return new ParPseudoLabelRefiner(parData, ParConfig.Default, ParDownScale);
        }
        if (!Crf && AffinityRun == null) return null;
        var dataRoot = DataRoot ?? throw new WeakSegException("--crf and --affinity need the images: pass --data ROOT");
        var crfConfig = Crf ? DenseCrfConfig.FromPreset(CrfPreset) : null;
        if (AffinityRun is null) return new CrfPseudoLabelRefiner(dataRoot, crfConfig, CrfPreset);
        TorchRuntime.Initialize("cpu");
        var (net, runConfig) = Affinity.AffinityRun.Load(AffinityRun);
        return new AffinityPseudoLabelRefiner(net, dataRoot, Walk?.Invoke(runConfig.Radius) ?? new RandomWalkConfig { Radius = runConfig.Radius }, crfConfig);
    }
}
