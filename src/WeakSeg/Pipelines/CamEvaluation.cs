using WeakSeg.Evaluation;
using WeakSeg.Refinement;

namespace WeakSeg.Pipelines;

/// <summary>One map folder scored against a split's masks: what `weakseg eval-cam` and the pipeline's cam-eval stage ask for.</summary>
public sealed record CamEvaluationRequest
{
    /// <summary>Maps NAME.npy + NAME.classes.npy (<see cref="CamMapFile"/>).</summary>
    public required string MapsDirectory { get; init; }

    /// <summary>Dataset root in VOC layout (the masks; the images for the CRF).</summary>
    public required string DataRoot { get; init; }

    public required string Split { get; init; }

    /// <summary>Thresholds swept, the mIoU rule, images in parallel.</summary>
    public CamSweepOptions Sweep { get; init; } = new();

    /// <summary>The sweep's JSON (<see cref="EvaluationJson"/>, with the artifact rate) and its chart beside it (same name, .png);
    /// null: neither is written.</summary>
    public string? EvaluationPath { get; init; }

    /// <summary>Dense CRF kernels: the comparison also scores the maps after the CRF (unary from [threshold; maps]) at their best
    /// threshold; null: no CRF row.</summary>
    public DenseCrfConfig? Crf { get; init; }

    /// <summary>A second map folder (e.g. random-walk maps): swept too and listed as "random walk" in the comparison (and "random walk +
    /// CRF" with <see cref="Crf"/>); null: none.</summary>
    public string? RandomWalkMaps { get; init; }

    /// <summary>Whether the result has a refinement comparison.</summary>
    public bool Compares => Crf is not null || RandomWalkMaps is not null;
}

/// <summary>One row of the refinement comparison: a variant scored at its best raw threshold.</summary>
public sealed record RefinementComparisonRow(string Variant, double Threshold, double MeanIou);

/// <summary>What <see cref="CamEvaluation.Run"/> measured.</summary>
/// <param name="Sweep">the threshold sweep (every threshold's metrics, the best one)</param>
/// <param name="Artifacts">the maps' artifact rate (<see cref="MapArtifactRate"/>)</param>
/// <param name="Comparison">maps, maps + CRF, random walk, random walk + CRF (those asked for); empty without a comparison</param>
/// <param name="PlotPath">the sweep chart written beside the JSON; null when no JSON was asked for</param>
public sealed record CamEvaluationResult(CamSweepResult Sweep, ArtifactRateResult Artifacts, IReadOnlyList<RefinementComparisonRow> Comparison,
    string? PlotPath);

/// <summary>
/// The evaluation of a map folder (metrics that read the pixel labels): the background-threshold sweep and the artifact rate from one
/// reading of every map and mask, the sweep's JSON and chart, and on request a comparison with the dense CRF and with random-walk maps.
/// </summary>
public static class CamEvaluation
{
    public static CamEvaluationResult Run(CamEvaluationRequest request, IStageReporter? reporter = null)
    {
        reporter ??= new SilentStageReporter();
        var (sweep, artifacts) = reporter.Run("sweep thresholds and artifact rate (read pixel labels)", p =>
            CamThresholdSweep.EvaluateWithArtifactRate(request.MapsDirectory, request.DataRoot, request.Split, request.Sweep, p));
        string? plotPath = null;
        if (request.EvaluationPath is { } jsonPath)
        {
            EvaluationJson.Write(jsonPath, sweep, request.Split, artifacts);
            plotPath = Path.ChangeExtension(jsonPath, ".png");
            Visualization.TrainingPlots.SaveThresholdSweep(sweep, plotPath);
        }
        var rows = new List<RefinementComparisonRow>();
        if (request.Compares)
        {
            rows.Add(new("maps", sweep.BestThreshold, sweep.BestMeanIou));
            if (request.Crf is not null) rows.Add(new("maps + CRF", sweep.BestThreshold, WithCrf(request.MapsDirectory, sweep.BestThreshold)));
            if (request.RandomWalkMaps is { } walked)
            {
                var rw = reporter.Run("sweep random-walk maps", p => CamThresholdSweep.Evaluate(walked, request.DataRoot, request.Split, request.Sweep, p));
                rows.Add(new("random walk", rw.BestThreshold, rw.BestMeanIou));
                if (request.Crf is not null) rows.Add(new("random walk + CRF", rw.BestThreshold, WithCrf(walked, rw.BestThreshold)));
            }
        }
        return new CamEvaluationResult(sweep, artifacts, rows, plotPath);

        double WithCrf(string mapsDirectory, double threshold) =>
            reporter.Run($"dense CRF at threshold {EvaluationJson.FormatThreshold(threshold)}", p => CrfMapEvaluation.Evaluate(mapsDirectory,
                request.DataRoot, request.Split, new CrfMapOptions { Threshold = (float)threshold, Crf = request.Crf! }, request.Sweep.MeanRule, 0, p)).MeanIou;
    }
}
