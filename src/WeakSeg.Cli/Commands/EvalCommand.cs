using System.CommandLine;
using WeakSeg.Evaluation;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg eval`: mIoU, precision and recall of predicted masks against a split's ground truth.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var defaults = new SegmentationEvalOptions();
        var pred = new Option<string>("--pred") { Description = "Directory of predicted masks NAME.png (palette or grayscale class indices; 255 = no prediction).", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout (ground truth from SegmentationClass, else SegmentationClassAug).", Required = true };
        var split = new Option<string>("--split") { Description = "Split list ImageSets/Segmentation/SPLIT.txt.", DefaultValueFactory = _ => "val" };
        var json = new Option<string?>("--json") { Description = "Also write the metrics as JSON to this file." };
        var predIgnore = new Option<string>("--pred-ignore")
        {
            Description = "Predicted 255 pixels: 'missed' counts them as not predicted (false negatives); 'skip' drops them (ToCo's pseudo-label scoring).",
            DefaultValueFactory = _ => PolicyOption(defaults.PredIgnore),
        };
        predIgnore.AcceptOnlyFromAmong("missed", "skip");
        var meanOver = MeanIouOption.Create(defaults.MeanRule);
        var shard = ShardOption.Create();
        var partial = new Option<string?>("--partial")
        {
            Description = "With --shard i/N: write this shard's confusion matrix to this JSON file (no metrics); `weakseg eval-merge` adds the N files into the metrics of one evaluation.",
        };
        var cmd = new Command("eval", "Score predicted segmentation masks against the ground truth of a split (per-class IoU, precision, recall, mIoU).");
        foreach (var o in new Option[] { pred, data, split, json, predIgnore, meanOver, shard, partial }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var options = defaults with
            {
                PredIgnore = parseResult.GetValue(predIgnore) == "skip" ? PredIgnorePolicy.SkipPixel : PredIgnorePolicy.CountAsMissed,
                MeanRule = MeanIouOption.Read(parseResult, meanOver),
            };
            var splitName = parseResult.GetValue(split)!;
            var part = ShardOption.Resolve(parseResult, shard);
            var partialPath = parseResult.GetValue(partial);
            bool shardJob = !part.IsWhole && part.Group is null;
            if (shardJob && partialPath is null)
                throw new WeakSegException($"--shard {part}: a shard scores only its images; pass --partial FILE to write its confusion matrix, then merge the N files with `weakseg eval-merge`");
            if (!shardJob && partialPath is not null) throw new WeakSegException("--partial is for --shard i/N jobs (one process or MPI ranks report the whole evaluation)");
            var result = CliProgress.Run("evaluating", p =>
                SegmentationEvaluator.EvaluateDirectory(parseResult.GetValue(pred)!, parseResult.GetValue(data)!, splitName, options, p, part));
            if (shardJob)
            {
                PartialEvaluationFile.Write(partialPath!, result, part, parseResult.GetValue(pred)!, parseResult.GetValue(data)!);
                Console.WriteLine($"shard {part}: {result.NumImages} images of {splitName}; wrote its confusion matrix to {partialPath} (merge all {part.Count} with `weakseg eval-merge`)");
                return 0;
            }
            CliConsole.ReportEvaluation(result, splitName, part.Group is { IsRoot: false } ? null : parseResult.GetValue(json));   // rank 0 writes for the job
            return 0;
        });
        return cmd;
    }

    static string PolicyOption(PredIgnorePolicy p) => p == PredIgnorePolicy.SkipPixel ? "skip" : "missed";
}
