using System.CommandLine;
using System.Globalization;
using WeakSeg.PseudoLabels;

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
        var cmd = new Command("pseudo", "Convert saved class maps into pseudo-label PNGs (argmax over [threshold; class maps], optional uncertain band → 255).");
        foreach (var o in new Option[] { cams, outDir, threshold, uncertain, overwrite }) cmd.Options.Add(o);
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
            var summary = CliProgress.Run("pseudo labels", p => PseudoLabelWriter.Run(parseResult.GetValue(cams)!, outPath, config, p));
            var ignoreShare = summary.TotalPixels > 0 ? (100.0 * summary.IgnorePixels / summary.TotalPixels).ToString("F1", CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"wrote {summary.Written} labels to {outPath}, skipped {summary.Skipped} existing; uncertain (255) pixels in written labels: {ignoreShare} %");
            return 0;
        });
        return cmd;
    }
}
