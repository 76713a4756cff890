using System.CommandLine;
using System.Globalization;
using WeakSeg.Data;
using WeakSeg.Refinement;
using WeakSeg.Runtime;
using WeakSeg.Segmentation;

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
        var scales = new Option<string?>("--scales") { Description = "Comma-separated inference scales, e.g. 0.75,1,1.25 (default: the run's)." };
        var noFlip = new Option<bool>("--no-flip") { Description = "Do not average with the horizontally flipped image." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Rewrite predictions that already exist." };
        var crf = new Option<bool>("--crf") { Description = "Refine the averaged probabilities with the dense CRF before the argmax (WeakTr's post-processing)." };
        var crfPreset = new Option<string>("--crf-preset")
        {
            Description = $"Dense CRF kernel parameters with --crf: {string.Join(", ", DenseCrfConfig.PresetNames)} (mctformer-seg = WeakTr/MCTformer's segmentation CRF).",
            DefaultValueFactory = _ => "mctformer-seg",
        };
        var device = new Option<string>("--device") { Description = "cpu or cuda[:N].", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "libtorch intra-op threads (0 = libtorch default).", DefaultValueFactory = _ => 0 };
        var shard = ShardOption.Create();
        var cmd = new Command("seg-infer", "Predict segmentation masks with a trained seg-train run (multi-scale, flip, sliding window); score them with `weakseg eval`.");
        foreach (var o in new Option[] { run, split, outDir, data, scales, noFlip, crf, crfPreset, overwrite, device, threads, shard }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var part = ShardOption.Resolve(parseResult, shard);
            var crfConfig = parseResult.GetValue(crf) ? DenseCrfConfig.FromPreset(parseResult.GetValue(crfPreset)!) : null;
            var dev = TorchRuntime.Initialize(parseResult.GetValue(device)!, parseResult.GetValue(threads));
            var (model, info, weights) = SegmentationRun.Load(parseResult.GetValue(run)!, dev);
            using var _ = model;
            var dataset = VocDataset.Open(parseResult.GetValue(data) ?? info.DataRoot, parseResult.GetValue(split)!);
            if (dataset.NumClasses != info.Config.NumClasses)
                throw new WeakSegException($"{dataset.Root} has {dataset.NumClasses} foreground classes but the run was trained with {info.Config.NumClasses}");
            var options = new SegmentationInferenceOptions
            {
                Scales = parseResult.GetValue(scales) is { } text ? ParseScales(text) : info.Config.InferenceScales,
                Flip = !parseResult.GetValue(noFlip) && info.Config.InferenceFlip,
                Overwrite = parseResult.GetValue(overwrite),
                Refine = crfConfig is null ? null : SegmentationRefiners.DenseCrf(crfConfig),
            };
            var outPath = parseResult.GetValue(outDir)!;
            var summary = CliProgress.Run("seg-infer", p => SegmentationInference.Run(new SegmentationPredictor(model, dev), dataset.Samples, outPath, options, p, shard: part));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {summary.Written} predictions to {outPath} ({summary.ImagesPerSecond:0.0} images/s), skipped {summary.Skipped} existing; weights {weights}{ShardOption.Suffix(part)}"));
            return 0;
        });
        return cmd;
    }

    internal static double[] ParseScales(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var scales = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out scales[i]) || !(scales[i] > 0) || scales[i] > 8)
                throw new WeakSegException($"--scales: '{parts[i]}' is not a scale in (0, 8]");
        if (scales.Length == 0) throw new WeakSegException("--scales: give at least one scale, e.g. 1 or 0.75,1,1.25");
        return scales;
    }
}
