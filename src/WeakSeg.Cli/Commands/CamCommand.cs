using System.CommandLine;
using System.Globalization;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Cli.Options;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg cam`: localization maps of a trained run for every image of a split (CamMapFile format).</summary>
public static class CamCommand
{
    public static Command Create()
    {
        var defaults = new LocalizationOptions();
        var run = new Option<string>("--run") { Description = "Run directory written by `weakseg train`.", Required = true };
        var outDir = new Option<string>("--out") { Description = "Output directory for NAME.npy + NAME.classes.npy (existing pairs are skipped).", Required = true };
        var split = new Option<string>("--split") { Description = "Split whose images get maps.", DefaultValueFactory = _ => new CamRequest { RunDirectory = "", OutDirectory = "" }.Split };
        var data = new Option<string?>("--data") { Description = "Dataset root (default: the run's training data)." };
        var scales = ScalesOption.Create("Comma-separated input scales.", defaults.Scales);
        var noFlip = new Option<bool>("--no-flip") { Description = "Do not add the horizontally flipped image's maps." };
        var map = MapOption.Create("Which map: refined (patch affinity · map), fused (V2: ⊙ PatchCAM; MCTformer+: √(class-to-patch ⊙ PatchCAM); baselines: raw map), class-to-patch, patch-cam (MCTformer+) or lam (MoRe: class-token × patch-token, min-max).", defaults.MapKind);
        var float16 = new Option<bool>("--float16") { Description = "Store maps as float16 (half the disk)." };
        var weights = new Option<string?>("--weights") { Description = "Weights file (default: RUN/model-final.bin, else the latest checkpoint)." };
        var runtime = new RuntimeOptions(RuntimePart.Device | RuntimePart.Threads);
        var shard = ShardOption.Create();

        var cmd = new Command("cam", "Write localization maps (multi-scale + flip, image's classes only, normalised per class) for every image of a split.");
        foreach (var o in new Option[] { run, outDir, split, data, scales, noFlip, map, float16, weights }.Concat(runtime.All).Append(shard)) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var request = new CamRequest
            {
                RunDirectory = parseResult.GetValue(run)!,
                OutDirectory = parseResult.GetValue(outDir)!,
                Split = parseResult.GetValue(split)!,
                DataRoot = parseResult.GetValue(data),
                Localization = defaults with
                {
                    Scales = ScalesOption.Parse(parseResult.GetValue(scales)!),
                    Flip = !parseResult.GetValue(noFlip),
                    MapKind = MapOption.Read(parseResult, map),
                },
                Float16 = parseResult.GetValue(float16),
                Weights = parseResult.GetValue(weights),
                Device = runtime.DeviceValue(parseResult),
                Threads = runtime.ThreadsValue(parseResult),
                Shard = ShardOption.Resolve(parseResult, shard),
            };
            var summary = CliProgress.Run("maps", p => CamPipeline.Run(request, p));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{summary.Method}: wrote maps of {summary.Written} images to {request.OutDirectory}, skipped {summary.Skipped} existing ({summary.Seconds:F1} s){ShardOption.Suffix(request.Shard)}"));
            return 0;
        });
        return cmd;
    }
}
