using System.CommandLine;
using System.Globalization;
using WeakSeg.Refinement;
using WeakSeg.Segmentation;
using WeakSeg.Cli.Options;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg seg-infer`: predict a split with a trained retraining run and write VOC-palette label PNGs.</summary>
public static class SegInferCommand
{
    public static Command Create()
    {
        var run = new Option<string>("--run") { Description = "Run directory written by `weakseg seg-train`.", Required = true };
        var split = new Option<string>("--split") { Description = "Split to predict (ImageSets/Segmentation/SPLIT.txt).", DefaultValueFactory = _ => "val" };
        var outDir = new Option<string>("--out") { Description = "Output directory for NAME.png predictions (existing files are skipped, so a stopped run resumes).", Required = true };
        var data = new Option<string?>("--data") { Description = "Dataset root (default: the one the run was trained on)." };
        var scales = ScalesOption.CreateOptional("Comma-separated inference scales, e.g. 0.75,1,1.25 (default: the run's).");
        var noFlip = new Option<bool>("--no-flip") { Description = "Do not average with the horizontally flipped image." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Rewrite predictions that already exist." };
        var crf = new Option<bool>("--crf") { Description = "Refine the averaged probabilities with the dense CRF before the argmax (WeakTr's post-processing)." };
        var crfPreset = new Option<string>("--crf-preset")
        {
            Description = $"Dense CRF kernel parameters with --crf: {string.Join(", ", DenseCrfConfig.PresetNames)} (mctformer-seg = WeakTr/MCTformer's segmentation CRF).",
            DefaultValueFactory = _ => "mctformer-seg",
        };
        var runtime = new RuntimeOptions(RuntimePart.Device | RuntimePart.Threads);
        var shard = ShardOption.Create();
        var cmd = new Command("seg-infer", "Predict segmentation masks with a trained seg-train run (multi-scale, flip, sliding window); score them with `weakseg eval`.");
        foreach (var o in new Option[] { run, split, outDir, data, scales, noFlip, crf, crfPreset, overwrite }.Concat(runtime.All).Append(shard)) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var part = ShardOption.Resolve(parseResult, shard);
            var crfConfig = parseResult.GetValue(crf) ? DenseCrfConfig.FromPreset(parseResult.GetValue(crfPreset)!) : null;
            var outPath = parseResult.GetValue(outDir)!;
            var (summary, weights) = CliProgress.Run("seg-infer", p => SegmentationInference.Run(new SegmentationInferRequest
            {
                RunDirectory = parseResult.GetValue(run)!, OutDirectory = outPath, Split = parseResult.GetValue(split)!, DataRoot = parseResult.GetValue(data),
                Scales = parseResult.GetValue(scales) is { } text ? ScalesOption.Parse(text, SegmentationConfig.MaxInferenceScale) : null,
                NoFlip = parseResult.GetValue(noFlip), Overwrite = parseResult.GetValue(overwrite), Crf = crfConfig,
                Device = runtime.DeviceValue(parseResult), Threads = runtime.ThreadsValue(parseResult), Shard = part,
            }, p));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {summary.Written} predictions to {outPath} ({summary.ImagesPerSecond:0.0} images/s), skipped {summary.Skipped} existing; weights {weights}{ShardOption.Suffix(part)}"));
            return 0;
        });
        return cmd;
    }
}
