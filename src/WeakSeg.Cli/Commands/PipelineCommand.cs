using System.CommandLine;
using WeakSeg.Methods;
using WeakSeg.Cli.Output;
using WeakSeg.Pipelines;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg pipeline`: maps → pseudo labels → retraining → val mIoU (+ upper bound), resumable, one report.json.</summary>
public static class PipelineCommand
{
    public static Command Create()
    {
        var method = new Option<string>("--method") { Description = $"CAM method: {string.Join(", ", MethodRegistry.Names)}.", DefaultValueFactory = _ => BuiltInMethods.PipelineMethod };
        var outDir = new Option<string>("--out") { Description = "Output folder (stages/, cam/, pseudo/, seg/, report.json, report.html). Run again with the same options to resume.", DefaultValueFactory = _ => Path.Combine("runs", "pipeline") };
        var pipelineOptions = new PipelineOptions();

        var cmd = new Command("pipeline", "The whole WSSS pipeline of a method: train the CAM model → maps → pseudo labels → retrain the segmenter → val mIoU, plus the full-supervision upper bound; resumable; writes OUT/report.json and OUT/report.html.");
        foreach (var o in new Option[] { method, outDir }.Concat(pipelineOptions.All)) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var options = pipelineOptions.Build(parseResult, parseResult.GetValue(method)!, parseResult.GetValue(outDir)!);
            using var cancel = CancelOnCtrlC.Install();
            return cancel.Run(token => { PipelineReportOutput.Print(WsssPipeline.Run(options, new CliStageReporter(), token)); return 0; },
                "run the same command again to resume (finished stages are reused, training continues from its checkpoint)");
        });
        return cmd;
    }
}
