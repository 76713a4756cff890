using System.CommandLine;
using System.Globalization;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;
using WeakSeg.Methods;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg bench seg`: training and inference throughput of a retraining network (Segmenter or DeepLab), relative to the GEMM ceiling.</summary>
public static class BenchSegCommand
{
    public static Command Create()
    {
        var model = PresetOption.Create("cpu: the CPU preset (ViT dim 192, depth 4, crop 96, batch 8); paper: DeiT-S at crop 480, batch 4 (slow on CPU: use few steps).", "--model");
        var network = new Option<string>("--seg-model")
        {
            Description = "Network timed: segmenter (WeakTr's ViT + mask-transformer decoder), deeplab-largefov or deeplab-aspp (DeepLab on the " +
                          "ImageNet ResNet-18, output stride 8), with the preset's settings for it (as `seg-train --model`, `pipeline --seg-model`).",
            DefaultValueFactory = _ => "segmenter",
        };
        network.AcceptOnlyFromAmong([.. SegmentationModels.Names]);
        var steps = new Option<int?>("--steps") { Description = "Timed training steps (default: cpu 20, paper 2)." };
        var warmup = new Option<int?>("--warmup") { Description = "Untimed training steps first (default: cpu 3, paper 1)." };
        var batchSize = new Option<int?>("--batch-size") { Description = "Training batch size (default: the preset's)." };
        var images = new Option<int?>("--images") { Description = "Timed inference images (default: cpu 20, paper 2); one untimed first." };
        var scales = ScalesOption.Create("Inference scales, comma-separated.", [1.0]);
        var noFlip = new Option<bool>("--no-flip") { Description = "Inference without the flipped pass." };
        var runtime = new RuntimeOptions(RuntimePart.Threads);
        var gemmSize = new Option<int>("--gemm-size") { Description = "Side of the square float32 matmul that sets the ceiling.", DefaultValueFactory = _ => 1024 };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file." };
        var cmd = new Command("seg", "Time the training (shared Trainer, the preset's optimizer and loss) and inference (sliding window, flip) on synthetic data.");
        foreach (var o in new Option[] { model, network, steps, warmup, batchSize, images, scales, noFlip, runtime.Threads, gemmSize, json }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var name = parse.GetValue(model)!;
            bool paper = PresetOption.Read(parse, model) == MethodPreset.Paper;
            // random tensors, so an explicit class count: VOC's for the paper preset, the built-in benchmark's for cpu
            var config = Presets.Get(PresetOption.Read(parse, model)).Segmentation(SegmentationModels.Parse(parse.GetValue(network)!))
                with { NumClasses = paper ? WeakSeg.Data.ClassNames.Voc.NumClasses : new WeakSeg.Data.Synthetic.SyntheticDatasetConfig().NumClasses };
            if (parse.GetValue(batchSize) is { } b) config = config with { BatchSize = b };
            var options = new SegmentationBenchmarkOptions
            {
                Config = config,
                TrainSteps = parse.GetValue(steps) ?? (paper ? 2 : 20),
                TrainWarmupSteps = parse.GetValue(warmup) ?? (paper ? 1 : 3),
                InferImages = parse.GetValue(images) ?? (paper ? 2 : 20),
                InferWarmupImages = 1,
                InferScales = ScalesOption.Parse(parse.GetValue(scales)!, SegmentationConfig.MaxInferenceScale),
                InferFlip = !parse.GetValue(noFlip),
                Threads = runtime.ThreadsValue(parse),
                GemmSize = parse.GetValue(gemmSize),
            };
            if (options.GemmSize < 1) throw new WeakSegException("--gemm-size must be ≥ 1");
            var r = CliProgress.Run("bench seg", p => SegmentationBenchmark.Run(options, name, p));
            var c = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Format(c, "{0} ({1} preset): crop {2}, batch {3}, {4} threads, load average {5:0.00} → {6:0.00}",
                r.Network, r.Model, r.CropSize, r.BatchSize, r.Threads, r.LoadAverageStart, r.LoadAverageEnd));
            Console.WriteLine("| measure | value |");
            Console.WriteLine("| --- | --- |");
            Console.WriteLine(string.Format(c, "| training images/s | {0:0.00} |", r.TrainImagesPerS));
            Console.WriteLine(string.Format(c, "| training GFLOP/s (3 × forward; ÷ GEMM) | {0:0.0} ({1:P1}) |", r.TrainGflops, r.GemmRatio));
            Console.WriteLine(string.Format(c, "| inference images/s (scales {0}{1}) | {2:0.00} |", string.Join(",", r.InferScales), r.InferFlip ? " + flip" : "", r.InferImagesPerS));
            Console.WriteLine(string.Format(c, "| inference GFLOP/s (÷ GEMM) | {0:0.0} ({1:P1}) |", r.InferGflops, r.InferGemmRatio));
            Console.WriteLine(string.Format(c, "| GEMM {0}³ GFLOP/s | {1:0.0} |", options.GemmSize, r.GemmGflops));
            Console.WriteLine(string.Format(c, "| peak RSS MiB | {0:0} |", r.PeakRssMb));
            if (parse.GetValue(json) is { } path)
            {
                CliConsole.WriteJsonFile(path, r.ToJson());
                Console.WriteLine($"wrote {path}");
            }
            return 0;
        });
        return cmd;
    }
}
