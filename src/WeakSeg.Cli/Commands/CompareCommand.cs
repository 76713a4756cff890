using System.CommandLine;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Cli.Output;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg compare --methods A,B --out DIR`: the pipeline of every method with the same options in DIR/METHOD (finished stages
/// reused), then DIR/compare.json and DIR/compare.html.</summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var methods = new Option<string>("--methods") { Description = $"Comma list of CAM methods ({string.Join(", ", MethodRegistry.Names)}).", Required = true };
        var outDir = new Option<string>("--out") { Description = "Output folder: one pipeline folder per method (METHOD/), compare.json, compare.html. Run again to reuse finished stages.", Required = true };
        var pipelineOptions = new PipelineOptions();
        var cmd = new Command("compare", "Run (or reuse) the pipeline of each method with the same data, seed and options; writes OUT/compare.json and OUT/compare.html (table, mIoU bars, the same examples side by side).");
        foreach (var o in new Option[] { methods, outDir }.Concat(pipelineOptions.All)) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var names = parseResult.GetValue(methods)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            using var cancel = CancelOnCtrlC.Install();
            var result = MethodComparison.Run(names, parseResult.GetValue(outDir)!, (method, dir) => pipelineOptions.Build(parseResult, method, dir),
                new CliStageReporter(), cancel.Token);
            foreach (var report in result.Reports) PipelineReportOutput.Print(report);
            Console.WriteLine($"wrote {result.JsonPath}");
            Console.WriteLine($"wrote {result.HtmlPath}");
            return 0;
        });
        return cmd;
    }
}
