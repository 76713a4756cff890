using System.CommandLine;
using System.Globalization;
using WeakSeg.PseudoLabels;
using WeakSeg.Refinement;
using WeakSeg.Cli.Options;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg pseudo`: pseudo-label PNGs from saved class maps.</summary>
public static class PseudoCommand
{
    public static Command Create()
    {
        var defaults = new PseudoLabelConfig();
        var cams = new Option<string>("--cams") { Description = "Directory of saved maps NAME.npy + NAME.classes.npy.", Required = true };
        var outDir = new Option<string>("--out") { Description = "Output directory for VOC-palette label PNGs NAME.png.", Required = true };
        var threshold = new Option<float>("--threshold")
        {
            Description = "Background threshold: a pixel is background when its highest class score is ≤ this. Use the best threshold of `weakseg eval-cam`.",
            DefaultValueFactory = _ => defaults.Threshold,
        };
        var uncertain = new Option<string?>("--uncertain") { Description = "LOW:HIGH: pixels whose highest class score is in [LOW, HIGH) become 255 (ignored in training), e.g. 0.25:0.7 (ToCo)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Rewrite labels that already exist (default: skip them)." };
        var crf = new Option<bool>("--crf") { Description = "Refine with the dense CRF (unary from [threshold; maps], PSA crf_inference); needs --data." };
        var crfPreset = new Option<string>("--crf-preset") { Description = $"CRF kernels: {string.Join(", ", DenseCrfConfig.PresetNames)}.", DefaultValueFactory = _ => "psa" };
        var par = new Option<bool>("--par")
        {
            Description = "Refine with PAR (ToCo's pixel-adaptive refinement: 48 dilated neighbours, 10 iterations) on [threshold; maps]; with --uncertain LOW:HIGH, "
                + "ToCo's two-level labels (255 where the HIGH stack says background and the LOW one does not); needs --data.",
        };
        var parDownScale = new Option<int>("--par-down-scale") { Description = "Run PAR at 1/N of the image size (ToCo's training labels: 2).", DefaultValueFactory = _ => 1 };
        var affinity = new Option<string?>("--affinity") { Description = "Affinity run (weakseg affinity train): refine the maps by its random walk first (background before the walk = --threshold); needs --data." };
        var data = new Option<string?>("--data") { Description = "Dataset root in VOC layout (the images), for --crf, --par and --affinity." };
        var walk = WalkOptions.Create(withThreshold: false);
        var shard = ShardOption.Create();
        var cmd = new Command("pseudo", "Convert saved class maps into pseudo-label PNGs (argmax over [threshold; class maps], optional uncertain band → 255; optional random walk, dense CRF or PAR).");
        foreach (var o in new Option[] { cams, outDir, threshold, uncertain, overwrite, crf, crfPreset, par, parDownScale, affinity, data, shard }.Concat(walk.All(false))) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var band = parseResult.GetValue(uncertain);
            var config = defaults with
            {
                Threshold = parseResult.GetValue(threshold),
                Uncertain = band is null ? null : UncertainBand.Parse(band),
                Overwrite = parseResult.GetValue(overwrite),
            };
            var outPath = parseResult.GetValue(outDir)!;
            var part = ShardOption.Resolve(parseResult, shard);
            var refiner = new PseudoLabelRefinement
            {
                Par = parseResult.GetValue(par), ParDownScale = parseResult.GetValue(parDownScale),
                Crf = parseResult.GetValue(crf), CrfPreset = parseResult.GetValue(crfPreset)!,
                AffinityRun = parseResult.GetValue(affinity), DataRoot = parseResult.GetValue(data),
                Walk = radius => walk.Read(parseResult, radius),
            }.Create();
            var summary = CliProgress.Run("pseudo labels", p => PseudoLabelWriter.Run(parseResult.GetValue(cams)!, outPath, config, p, refiner, part));
            var ignoreShare = summary.TotalPixels > 0 ? (100.0 * summary.IgnorePixels / summary.TotalPixels).ToString("F1", CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"wrote {summary.Written} labels to {outPath}, skipped {summary.Skipped} existing; uncertain (255) pixels in written labels: {ignoreShare} %{ShardOption.Suffix(part)}");
            return 0;
        });
        return cmd;
    }
}
