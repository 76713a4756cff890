using System.CommandLine;
using WeakSeg.Evaluation;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg eval-merge`: the evaluation of a split scored by N `eval --shard i/N --partial FILE` jobs.</summary>
public static class EvalMergeCommand
{
    public static Command Create()
    {
        var partials = new Argument<string[]>("partials") { Description = "The N partial files written by `weakseg eval --shard i/N --partial FILE` (one per shard).", Arity = ArgumentArity.OneOrMore };
        var json = new Option<string?>("--json") { Description = "Also write the metrics as JSON to this file (as `weakseg eval --json`)." };
        var meanOver = MeanIouOption.Create(new SegmentationEvalOptions().MeanRule);
        var cmd = new Command("eval-merge", "Add the confusion matrices of `eval --shard i/N` jobs into one evaluation (identical to scoring the split in one process).");
        cmd.Arguments.Add(partials);
        foreach (var o in new Option[] { json, meanOver }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var result = PartialEvaluationFile.Merge(parseResult.GetValue(partials)!, MeanIouOption.Read(parseResult, meanOver));
            CliConsole.ReportEvaluation(result, result.Split, parseResult.GetValue(json));
            return 0;
        });
        return cmd;
    }
}
