using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using WeakSeg.Data.Synthetic;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg synth`: writes the built-in synthetic WSSS benchmark in the PASCAL VOC 2012 layout.</summary>
public static class SynthCommand
{
    public static Command Create()
    {
        var defaults = new SyntheticDatasetConfig();
        var outDir = new Option<string>("--out") { Description = "Output dataset root (VOC 2012 layout).", Required = true };
        var train = new Option<int>("--train") { Description = "Train images.", DefaultValueFactory = _ => defaults.TrainImages };
        var val = new Option<int>("--val") { Description = "Val images.", DefaultValueFactory = _ => defaults.ValImages };
        var size = new Option<int>("--size") { Description = "Image side in pixels.", DefaultValueFactory = _ => defaults.ImageSize };
        var classes = new Option<int>("--classes") { Description = $"Foreground classes K (1..{SyntheticClassCatalog.MaxClasses}; the trap class 'boat' needs K ≥ 2).", DefaultValueFactory = _ => defaults.NumClasses };
        var seed = new Option<long>("--seed") { Description = "Dataset seed (same arguments → identical files).", DefaultValueFactory = _ => defaults.Seed };
        var threads = new Option<int>("--threads") { Description = "Worker threads (0 = all cores); never changes the output.", DefaultValueFactory = _ => defaults.Threads };
        var saliency = new Option<bool>("--saliency") { Description = $"Also write saliency maps of every image, estimated (spectral residual), to OUT/{WeakSeg.Refinement.Saliency.SaliencyMaps.DatasetFolder}/NAME.png (for --saliency of train/pipeline)." };

        var cmd = new Command("synth", "Generate the built-in synthetic WSSS benchmark (textured shapes on procedural backgrounds, with a 'boat on water' co-occurrence trap).");
        foreach (var o in new Option[] { outDir, train, val, size, classes, seed, threads, saliency }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var config = defaults with
            {
                TrainImages = parseResult.GetValue(train),
                ValImages = parseResult.GetValue(val),
                ImageSize = parseResult.GetValue(size),
                NumClasses = parseResult.GetValue(classes),
                Seed = parseResult.GetValue(seed),
                Threads = parseResult.GetValue(threads),
            };
            var errors = config.Validate();
            if (errors.Count > 0) throw new WeakSegException("invalid synth options: " + string.Join("; ", errors));
            var root = parseResult.GetValue(outDir)!;
            var summary = CliProgress.Run("synth", p => SyntheticDataset.Generate(root, config, p));
            PrintSummary(summary);
            if (parseResult.GetValue(saliency))
            {
                var salDir = Path.Combine(root, WeakSeg.Refinement.Saliency.SaliencyMaps.DatasetFolder);
                var samples = new[] { "train", "val" }.SelectMany(split => WeakSeg.Data.VocDataset.Open(root, split).Samples).ToList();
                CliProgress.Run("saliency", p => WeakSeg.Refinement.Saliency.SaliencyMaps.WriteEstimated(samples, salDir, p));
                Console.WriteLine($"wrote {samples.Count} saliency maps to {salDir}");
            }
            return 0;
        });
        return cmd;
    }

    static void PrintSummary(SyntheticDatasetSummary s)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = new Table().Title($"synthetic benchmark: {s.TrainImages} train + {s.ValImages} val").AddColumns("#", "class", "train imgs", "val imgs", "pixel share", "on water");
        foreach (var c in s.Classes)
            table.AddRow(c.Index.ToString(inv), Markup.Escape(c.Name), c.TrainImages.ToString(inv), c.ValImages.ToString(inv),
                         c.PixelShare.ToString("P1", inv), c.OnTrapBackground.ToString(inv));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(Markup.Escape(string.Create(inv,
            $"objects/image {s.MeanObjectsPerImage:F2}, classes/image {s.MeanClassesPerImage:F2}, ignore pixels {s.IgnoreFraction:P1}, " +
            $"scenes: {string.Join(", ", s.Scenes.Select(kv => kv.Key + " " + kv.Value))}")));
        if (s.TrapClass != null)
            AnsiConsole.MarkupLine(Markup.Escape(string.Create(inv,
                $"trap: {s.TrapClass} on {s.TrapScene} in {s.TrapClassImagesOnTrapScene}/{s.TrapClassImages} {s.TrapClass} images ({s.TrapSceneGivenClass:P0}); " +
                $"{s.TrapSceneImagesWithTrapClass}/{s.TrapSceneImages} {s.TrapScene} images contain a {s.TrapClass} ({s.TrapClassGivenScene:P0})")));
        AnsiConsole.MarkupLine(Markup.Escape($"wrote {s.Root} in {s.Elapsed.TotalSeconds.ToString("F1", inv)} s"));
    }
}
