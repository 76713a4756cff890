using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg pipeline`: maps → pseudo labels → retraining → val mIoU (+ upper bound), resumable, one report.json.</summary>
public static class PipelineCommand
{
    public static Command Create()
    {
        var method = new Option<string>("--method") { Description = $"CAM method: {string.Join(", ", MethodRegistry.Names)}.", DefaultValueFactory = _ => BuiltInMethods.PipelineMethod };
        var recipeOptions = new RecipeOptions();
        var data = new Option<string?>("--data") { Description = "Dataset root in VOC layout (default: generate the built-in benchmark into OUT/data)." };
        var outDir = new Option<string>("--out") { Description = "Output folder (stages/, cam/, pseudo/, seg/, report.json). Run again with the same options to resume.", DefaultValueFactory = _ => Path.Combine("runs", "pipeline") };
        var split = new Option<string>("--split") { Description = "Training split: image labels for the CAM model, pseudo labels for the segmenter; its masks score cam_miou and pseudo_miou.", DefaultValueFactory = _ => "train" };
        var valSplit = new Option<string>("--val-split") { Description = "Split scored by val_miou and upper_bound_miou.", DefaultValueFactory = _ => "val" };
        var preset = new Option<string>("--preset") { Description = "cpu (small ViTs for the 96×96 benchmark) or paper (DeiT-S, the papers' schedules).", DefaultValueFactory = _ => "cpu" };
        preset.AcceptOnlyFromAmong("cpu", "paper");
        var config = new Option<string?>("--config") { Description = "JSON laid over the CAM recipe: {\"model\": {...}, \"trainer\": {...}, \"augmentation\": {...}} (as for `weakseg train`)." };
        var segConfig = new Option<string?>("--seg-config") { Description = "Segmenter configuration JSON (the \"config\" object of a seg-train run's config.json) instead of the preset's." };
        var camSteps = new Option<long?>("--cam-steps") { Description = "CAM training steps (default: the preset's)." };
        var segSteps = new Option<long?>("--seg-steps") { Description = "Segmenter training steps (default: the preset's)." };
        var map = new Option<string?>("--map") { Description = "Map for the pseudo labels: refined, fused, class-to-patch or patch-cam (default: paper preset refined, the papers' final map; cpu preset class-to-patch, the best map of a ViT trained from scratch)." };
        map.AcceptOnlyFromAmong([.. LocalizationMapKindNames.All]);
        var scales = new Option<string>("--scales") { Description = "Comma-separated map inference scales.", DefaultValueFactory = _ => CamCommand.FormatScales(new LocalizationOptions().Scales) };
        var noFlip = new Option<bool>("--no-flip") { Description = "Maps without the horizontally flipped image." };
        var thresholds = new Option<string>("--thresholds") { Description = "Background thresholds of the CAM sweep: START:STOP:STEP or a comma list.", DefaultValueFactory = _ => "0:0.95:0.05" };
        var threshold = new Option<double?>("--threshold") { Description = $"Background threshold of the pseudo labels (default: the method's preset value from its official code, which reads no pixel label: {PresetThresholds()})." };
        var oracleThreshold = new Option<bool>("--oracle-threshold") { Description = "Take the pseudo-label threshold from the sweep on the training split's ground-truth masks (the official scripts' practice; uses pixel labels, marked \"oracle\" in report.json)." };
        var decoders = new Option<string>("--decoders") { Description = "Comma list of decoders retrained on the pseudo labels: gradclip, naive. The first gives val_miou.", DefaultValueFactory = _ => "gradclip" };
        var noUpperBound = new Option<bool>("--no-upper-bound") { Description = "Skip the segmenter trained on ground-truth masks (upper_bound_miou)." };
        var crf = new Option<bool>("--crf") { Description = "Dense CRF on the segmenter's probabilities at val inference (WeakTr's post-processing)." };
        var stopAfter = new Option<string>("--stop-after") { Description = "cam (maps + cam_miou), pseudo (+ pseudo_miou) or segmentation (everything).", DefaultValueFactory = _ => "segmentation" };
        stopAfter.AcceptOnlyFromAmong("cam", "pseudo", "segmentation");
        var seed = new Option<long>("--seed") { Description = "Seed of every training stage (a CPU run is repeatable).", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu or cuda[:N].", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "libtorch intra-op threads (0 = libtorch's choice).", DefaultValueFactory = _ => 0 };
        var workers = new Option<int>("--workers") { Description = "Image-decoding threads (never changes the batches).", DefaultValueFactory = _ => 2 };

        var cmd = new Command("pipeline", "The whole WSSS pipeline of a method: train the CAM model → maps → pseudo labels → retrain the segmenter → val mIoU, plus the full-supervision upper bound; resumable; writes OUT/report.json.");
        foreach (var o in new Option[] { method, data, outDir, split, valSplit, preset, config, segConfig, camSteps, segSteps, map, scales, noFlip,
                     thresholds, threshold, oracleThreshold, decoders, noUpperBound, crf, stopAfter, seed, device, threads, workers }.Concat(recipeOptions.All))
            cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var presetName = parseResult.GetValue(preset)!;
            var recipe = TrainRecipe.Preset(parseResult.GetValue(method)!, MethodRegistry.ParsePreset(presetName), 20);
            if (parseResult.GetValue(config) is { } configPath) recipe = recipe.Overlay(configPath);
            recipe = recipeOptions.Apply(recipe, parseResult);
            if (parseResult.GetValue(camSteps) is { } cs)
                recipe = recipe with { Trainer = recipe.Trainer with { Steps = cs, WarmupSteps = Math.Min(recipe.Trainer.WarmupSteps, cs / 10) } };
            var seg = parseResult.GetValue(segConfig) is { } segPath ? ReadSegmentationConfig(segPath) : SegmentationConfig.FromPreset(presetName);
            if (parseResult.GetValue(segSteps) is { } ss) seg = seg with { Steps = ss, WarmupSteps = Math.Min(seg.WarmupSteps, ss / 10) };
            var options = new WsssPipelineOptions
            {
                OutDirectory = parseResult.GetValue(outDir)!,
                DataRoot = parseResult.GetValue(data),
                TrainSplit = parseResult.GetValue(split)!,
                ValSplit = parseResult.GetValue(valSplit)!,
                CamRecipe = recipe,
                Preset = MethodRegistry.ParsePreset(presetName),
                Localization = new LocalizationOptions { Scales = CamCommand.ParseScales(parseResult.GetValue(scales)!), Flip = !parseResult.GetValue(noFlip) },
                MapKind = parseResult.GetValue(map) is { } m ? CamCommand.ParseMap(m) : null,
                Thresholds = CamThresholdSweep.ParseThresholds(parseResult.GetValue(thresholds)!),
                PseudoThreshold = parseResult.GetValue(threshold),
                OracleThreshold = parseResult.GetValue(oracleThreshold),
                Segmentation = seg,
                Decoders = ParseDecoders(parseResult.GetValue(decoders)!),
                UpperBound = !parseResult.GetValue(noUpperBound),
                Crf = parseResult.GetValue(crf),
                StopAfter = parseResult.GetValue(stopAfter) switch { "cam" => PipelineEnd.Cam, "pseudo" => PipelineEnd.Pseudo, _ => PipelineEnd.Segmentation },
                Seed = parseResult.GetValue(seed),
                Device = parseResult.GetValue(device)!,
                Threads = parseResult.GetValue(threads),
                Workers = parseResult.GetValue(workers),
                Group = WeakSeg.Runtime.ProcessGroup.World,
            };
            using var cancel = CancelOnCtrlC.Install();
            return cancel.Run(token => Report(WsssPipeline.Run(options, new CliStageReporter(), token)),
                "run the same command again to resume (finished stages are reused, training continues from its checkpoint)");
        });
        return cmd;
    }

    static int Report(WsssPipelineReport report)
    {
        EvalCommand.StdoutConsole().Write(ReportTable(report));
        var written = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(report.ReportPath))!;
        Console.WriteLine($"pseudo-label threshold {report.Threshold.ToString("0.00", CultureInfo.InvariantCulture)} ({written["threshold_source"]})");
        foreach (var skipped in written["skipped_metrics"]!.AsArray()) Console.WriteLine($"skipped {skipped}");
        Console.WriteLine($"wrote {report.ReportPath}");
        return 0;
    }

    /// <summary>"name value, …" of every registered method's preset pseudo-label threshold, for help texts.</summary>
    internal static string PresetThresholds() => string.Join(", ", MethodRegistry.Names.Select(n =>
        n + " " + MethodRegistry.Get(n).DefaultConfig(MethodPreset.Cpu, 20).PseudoLabelThreshold.Value.ToString(CultureInfo.InvariantCulture)));

    internal static IReadOnlyList<SegmentationDecoderLoss> ParseDecoders(string text)
    {
        var names = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0) throw new WeakSegException("--decoders: give at least one of gradclip, naive");
        return names.Select(n => n.ToLowerInvariant() switch
        {
            "gradclip" => SegmentationDecoderLoss.GradientClipping,
            "naive" => SegmentationDecoderLoss.Naive,
            _ => throw new WeakSegException($"--decoders: unknown decoder '{n}' (known: gradclip, naive)"),
        }).Distinct().ToList();
    }

    static SegmentationConfig ReadSegmentationConfig(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "segmentation configuration not found");
        return SegmentationConfig.FromJson(File.ReadAllText(path), path);
    }

    static Table ReportTable(WsssPipelineReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        string Pct(double? v) => v is { } x && !double.IsNaN(x) ? string.Create(inv, $"{100 * x:F1}") : "-";
        var table = new Table().Title($"{r.Method} pipeline ({CamCommand.MapName(r.Map)} maps)");
        table.AddColumn("stage");
        table.AddColumn(new TableColumn("mIoU %").RightAligned());
        table.AddColumn(new TableColumn("seconds").RightAligned());
        string Seconds(string prefix) => string.Create(inv, $"{r.Stages.Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal)).Sum(s => s.Seconds):F0}");
        table.AddRow("CAM (best threshold of the sweep)", Pct(r.CamMeanIou), Seconds("cam-") + " + maps " + Seconds("maps"));
        table.AddRow("pseudo labels (threshold " + r.Threshold.ToString("0.00", inv) + ")", Pct(r.PseudoMeanIou), Seconds("pseudo"));
        foreach (var (decoder, miou) in r.ValMeanIouByDecoder) table.AddRow($"val, {decoder} decoder", Pct(miou), Seconds($"seg-{CamCommand.MapName(r.Map)}-{decoder}"));
        table.AddRow("val, upper bound (ground truth)", Pct(r.UpperBoundMeanIou), Seconds("upper-bound"));
        table.AddRow("weak / full", r.WeakFullRatio is { } d ? d.ToString("0.000", inv) : "-", string.Create(inv, $"total {r.Seconds:F0}"));
        return table;
    }
}
