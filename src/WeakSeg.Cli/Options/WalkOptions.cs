using System.CommandLine;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Affinity;

namespace WeakSeg.Cli.Options;

/// <summary>Random-walk options shared by `affinity infer` and `pseudo --affinity`; defaults from <see cref="RandomWalkConfig"/>.</summary>
internal sealed record WalkOptions(Option<double> Beta, Option<int> LogT, Option<int?> Radius, Option<string> Background, Option<float> BackgroundThreshold, Option<float> BackgroundAlpha)
{
    public static WalkOptions Create(bool withThreshold)
    {
        var d = new RandomWalkConfig();
        var beta = new Option<double>("--beta") { Description = "Affinity power β of the random walk (PSA/MCTformer: 8).", DefaultValueFactory = _ => d.Beta };
        var logt = new Option<int>("--logt") { Description = "The walk runs 2^LOGT steps (PSA: 8; MCTformer's infer_aff.py: 6).", DefaultValueFactory = _ => d.LogT };
        var radius = new Option<int?>("--radius") { Description = "Pair radius on the feature grid (default: the run's training radius, PSA 5)." };
        var background = new Option<string>("--background")
        {
            Description = "Background before the walk: 'threshold' (constant, MCTformer bg_thr) or 'power' ((1 − max)^α, PSA).",
            DefaultValueFactory = _ => "threshold",
        };
        background.AcceptOnlyFromAmong("threshold", "power");
        var bgThreshold = new Option<float>(withThreshold ? "--bg-threshold" : "--rw-bg-threshold")
        {
            Description = "Constant background score before the walk (MCTformer psa/infer_aff.py: 0.39, tuned for its maps; use eval-cam's best threshold).",
            DefaultValueFactory = _ => d.BackgroundThreshold,
        };
        var bgAlpha = new Option<float>("--bg-alpha") { Description = "Background power α with --background power (PSA: 16).", DefaultValueFactory = _ => d.BackgroundAlpha };
        return new WalkOptions(beta, logt, radius, background, bgThreshold, bgAlpha);
    }

    public IEnumerable<Option> All(bool withThreshold) => withThreshold
        ? new Option[] { Beta, LogT, Radius, Background, BackgroundThreshold, BackgroundAlpha }
        : new Option[] { Beta, LogT, Radius, Background, BackgroundAlpha };

    public RandomWalkConfig Read(ParseResult r, int runRadius) => new()
    {
        Beta = r.GetValue(Beta), LogT = r.GetValue(LogT), Radius = r.GetValue(Radius) ?? runRadius,
        Background = r.GetValue(Background) == "power" ? MapBackground.Power : MapBackground.Threshold,
        BackgroundThreshold = r.GetValue(BackgroundThreshold), BackgroundAlpha = r.GetValue(BackgroundAlpha),
    };
}
