using System.CommandLine;
using WeakSeg.Cli.Options;
using System.Globalization;
using WeakSeg.Refinement;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg crf`: dense-CRF post-processing of segmentation outputs (label PNGs).</summary>
public static class CrfCommand
{
    public static Command Create()
    {
        var defaults = new CrfDirectoryOptions();
        var pred = new Option<string>("--pred") { Description = "Directory of predicted label PNGs NAME.png (palette or grayscale indices).", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout (images and class list).", Required = true };
        var split = new Option<string>("--split") { Description = "Split list ImageSets/Segmentation/SPLIT.txt: the images to refine.", DefaultValueFactory = _ => "val" };
        var outDir = new Option<string>("--out") { Description = "Output directory for the refined label PNGs.", Required = true };
        var preset = new Option<string>("--preset")
        {
            Description = $"CRF kernel preset: {string.Join(", ", DenseCrfConfig.PresetNames)} (mctformer-seg = MCTformer's segmentation-stage CRF).",
            DefaultValueFactory = _ => "mctformer-seg",
        };
        var jobs = new Option<int>("--jobs") { Description = "Images refined at once (each CRF single-threaded); 1 = one image at a time on all cores.", DefaultValueFactory = _ => defaults.MaxParallelism };
        var overwrite = new Option<bool>("--overwrite") { Description = "Rewrite outputs that already exist (default: skip them, so a stopped run resumes)." };
        var shard = ShardOption.Create();
        var cmd = new Command("crf", "Refine segmentation label PNGs with the dense CRF (unary from the labels, gt_prob 0.7; 255 = unsure).");
        foreach (var o in new Option[] { pred, data, split, outDir, preset, jobs, overwrite, shard }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var options = defaults with
            {
                Crf = DenseCrfConfig.FromPreset(parseResult.GetValue(preset)!),
                Overwrite = parseResult.GetValue(overwrite),
                MaxParallelism = Math.Max(1, parseResult.GetValue(jobs)),
            };
            var outPath = parseResult.GetValue(outDir)!;
            var part = ShardOption.Resolve(parseResult, shard);
            var summary = CliProgress.Run("dense CRF", p => CrfPostProcessing.RefineDirectory(parseResult.GetValue(pred)!, parseResult.GetValue(data)!,
                parseResult.GetValue(split)!, outPath, options, p, part));
            var share = summary.TotalPixels > 0 ? (100.0 * summary.ChangedPixels / summary.TotalPixels).ToString("F2", CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"wrote {summary.Written} refined labels to {outPath}, skipped {summary.Skipped} existing; pixels changed by the CRF: {share} %{ShardOption.Suffix(part)}");
            return 0;
        });
        return cmd;
    }
}
