using WeakSeg.Visualization;

namespace WeakSeg.Pipelines;

/// <summary>Result of <see cref="MethodComparison.Run"/>: each method's pipeline report and the two comparison files.</summary>
public sealed record MethodComparisonResult(IReadOnlyList<WsssPipelineReport> Reports, string JsonPath, string HtmlPath);

/// <summary>
/// Runs (or reuses) the pipeline of every method in <c>DIR/METHOD/</c> with the same options, then writes <c>DIR/compare.json</c> and
/// <c>DIR/compare.html</c> (<see cref="ComparisonReport"/>). A finished pipeline folder is reused stage by stage (its ledger), so adding a
/// method to the list runs only the new one.
/// </summary>
public static class MethodComparison
{
    /// <summary>The pipeline options of each method come from <paramref name="optionsFor"/>(method, DIR/method); they are all built before
    /// the first pipeline runs, so a bad method name or option fails at once.</summary>
    public static MethodComparisonResult Run(IReadOnlyList<string> methods, string outDirectory, Func<string, string, WsssPipelineOptions> optionsFor,
        IStageReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        if (methods.Count == 0) throw new WeakSegException("--methods: give at least one method");
        var duplicate = methods.GroupBy(m => m, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new WeakSegException($"--methods: '{duplicate.Key}' is listed twice");
        var outDir = Path.GetFullPath(outDirectory);
        if (File.Exists(outDir)) throw WeakSegException.ForFile(outDir, "output path is a file, expected a directory");
        var runs = methods.Select(m => (Method: m, Options: optionsFor(m, Path.Combine(outDir, m)))).ToList();
        reporter ??= new SilentStageReporter();
        var reports = new List<WsssPipelineReport>();
        foreach (var (method, options) in runs)
        {
            reporter.Log($"pipeline {method} → {options.OutDirectory}");
            reports.Add(WsssPipeline.Run(options, reporter, cancellationToken));
        }
        var (json, html) = ComparisonReport.Write(outDir, methods);
        return new MethodComparisonResult(reports, json, html);
    }
}
