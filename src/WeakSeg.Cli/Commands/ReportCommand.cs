using System.CommandLine;
using WeakSeg.Visualization;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg report RUN`: (re)writes RUN/report.html from a pipeline or demo folder's records (or DIR/compare.html of a comparison).</summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var run = new Argument<string>("run") { Description = "A pipeline or demo output folder (or a `compare` folder holding compare.json)." };
        var cmd = new Command("report", "Write RUN/report.html from the run's records (report.json or metrics.json, stages, evaluations, metrics.jsonl); stages without records show as not run.");
        cmd.Arguments.Add(run);
        cmd.SetAction(parseResult =>
        {
            var dir = parseResult.GetValue(run)!;
            var comparison = Path.Combine(dir, ComparisonReport.JsonFile);
            if (File.Exists(comparison) && !File.Exists(Path.Combine(dir, RunFolder.PipelineRecord)))
            {
                var runs = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(comparison))?["runs"]?.AsArray()
                    .Select(r => r?["folder"]?.GetValue<string>()).OfType<string>().ToList()
                    ?? throw WeakSegException.ForFile(comparison, "expected { \"runs\": [ { \"folder\": ... } ] }");
                var (json, html) = ComparisonReport.Write(dir, runs);
                Console.WriteLine($"wrote {json}");
                Console.WriteLine($"wrote {html}");
                return 0;
            }
            Console.WriteLine($"wrote {RunReport.Write(dir)}");
            return 0;
        });
        return cmd;
    }
}
