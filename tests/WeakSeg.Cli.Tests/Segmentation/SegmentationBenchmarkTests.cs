using System.Text.Json;
using WeakSeg.Segmentation;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Segmentation;

[Collection("Torch")]
public class SegmentationBenchmarkTests
{
    [Fact]
    public void Segmenter_flops_match_a_hand_count_for_the_tiny_model()
    {
        // Tiny: crop 32, patch 8 → N = 16 patches, T = 17 tokens, D = 32, MLP 128, 1 block; decoder D = 32, 1 layer, C = 4 classes.
        // encoder: patch 2·16·192·32 = 196 608; block 2·17·32·96 + 2·(2·17·17·32) + 2·17·32·32 + 2·17·32·128·2 = 454 784
        // decoder: proj_dec 32 768; block on 20 tokens 542 720; proj_patch 32 768; proj_classes 8 192; masks 4 096 → 620 544
        var tiny = SegmentationTestData.Tiny();
        Assert.Equal(620_544, SegmenterFlops.Decoder(tiny, 32, 32));
        Assert.Equal(1_271_936, SegmenterFlops.Forward(tiny, 32, 32));
        Assert.Equal(3 * 1_271_936, SegmentationFlops.TrainPerImage(tiny));
        // inference: flip doubles; at scale 2 a 64×64 image needs Starts(64, 32, 21) = {0, 21, 32} → 3×3 windows
        Assert.Equal(2 * 1_271_936, SegmentationFlops.InferPerImage(tiny, 32, 32, [1.0], flip: true));
        Assert.Equal(1_271_936 * (1 + 9), SegmentationFlops.InferPerImage(tiny, 32, 32, [1.0, 2.0], flip: false));
    }

    [Fact]
    public void A_hybrid_stem_replaces_the_patch_convolution_by_the_trunk_and_projection_and_a_frozen_trunk_counts_once_in_training()
    {
        // The tiny model on the ResNet-18 stem to stride 8 at 32²: − patch 196 608 + projection 2·16·128·32 = 131 072 + the trunk
        // (conv1 7×7 3→64 at 16²: 4 816 896; layer1 at 8²: 18 874 368; layer2 at 4²: 16 777 216 → 40 468 480) = 41 674 880.
        var hybrid = SegmentationTestData.Tiny() with
        {
            Backbone = SegmentationTestData.Tiny().Backbone with { Stem = WeakSeg.Models.Vit.VitStem.ResNet18Stride8 },
        };
        Assert.Equal(40_468_480, SegmenterFlops.Trunk(hybrid, 32, 32));
        Assert.Equal(41_674_880, SegmenterFlops.Forward(hybrid, 32, 32));
        Assert.Equal(3 * (41_674_880.0 - 40_468_480) + 40_468_480, SegmentationFlops.TrainPerImage(hybrid));     // frozen: one trunk forward
        var tuned = hybrid with { Backbone = hybrid.Backbone with { FreezeStem = false } };
        Assert.Equal(3 * 41_674_880.0, SegmentationFlops.TrainPerImage(tuned));
        Assert.Equal(0, SegmenterFlops.Trunk(SegmentationTestData.Tiny(), 32, 32));
    }

    [Fact]
    public void Tiny_benchmark_reports_consistent_figures_and_json_keys()
    {
        var r = SegmentationBenchmark.Run(new SegmentationBenchmarkOptions
        {
            Config = SegmentationTestData.Tiny() with { BatchSize = 2 }, TrainSteps = 2, TrainWarmupSteps = 1, InferImages = 2, InferWarmupImages = 1,
            GemmSize = 64, GemmRepeats = 3, Threads = 2,
        }, "tiny");
        var json = JsonDocument.Parse(r.ToJson()).RootElement;
        foreach (var key in new[] { "train_images_per_s", "infer_images_per_s", "gemm_ratio", "peak_rss_mb", "gemm_gflops", "train_gflops", "train_flops_per_image" })
            Assert.True(json.TryGetProperty(key, out _), key);
        double D(string k) => json.GetProperty(k).GetDouble();
        Assert.True(D("train_images_per_s") > 0 && D("infer_images_per_s") > 0 && D("gemm_gflops") > 0);
        Assert.Equal(3 * 1_271_936, D("train_flops_per_image"));
        Assert.Equal(2 * 1_271_936, D("infer_flops_per_image"));
        Assert.Equal(D("train_images_per_s") * D("train_flops_per_image") / 1e9, D("train_gflops"), 9);
        Assert.Equal(D("train_gflops") / D("gemm_gflops"), D("gemm_ratio"), 9);
        Assert.Equal(D("infer_gflops") / D("gemm_gflops"), D("infer_gemm_ratio"), 9);
        Assert.True(D("peak_rss_mb") > 50, $"peak RSS {D("peak_rss_mb")} MiB");   // libtorch alone is larger
        Assert.Equal("tiny", json.GetProperty("model").GetString());
        Assert.Equal(2, json.GetProperty("train_steps").GetInt32());
    }

    [Fact]
    public void Bench_seg_cli_writes_the_json_file()
    {
        var (output, json) = RunBenchSeg();
        Assert.Contains("| training images/s |", output);
        Assert.Equal("cpu", json.GetProperty("model").GetString());
        Assert.Equal("segmenter", json.GetProperty("network").GetString());
        Assert.Equal(96, json.GetProperty("crop_size").GetInt32());
        var cpu = SegmentationConfig.Cpu with { NumClasses = 10 };                          // on the frozen ResNet-18 stem
        Assert.Equal(3 * SegmenterFlops.Forward(cpu, 96, 96) - 2 * SegmenterFlops.Trunk(cpu, 96, 96), json.GetProperty("train_flops_per_image").GetDouble());
    }
    /// <summary>A 32×32 input: conv1 → 16², max-pool → 8², layer2 → 4², layers 3 and 4 dilated at 4²; K + 1 = 4 classes.</summary>
    static SegmentationConfig DeepLabTiny(SegmentationModel model) => SegmentationTestData.Tiny() with
    {
        Model = model, DeepLab = new DeepLabSettings { HeadChannels = 16, LargeFovRate = 2, AsppRates = [1, 2], Pretrained = false },
    };

    [Fact]
    public void DeepLab_flops_match_a_hand_count_at_32_pixels_for_both_heads()
    {
        // trunk (packaged layout 2-2-2-3, 2·H'·W'·k²·Cin·Cout per conv):
        //   conv1 7×7 3→64 at 16²: 4 816 896
        //   layer1 at 8²: 4 × (3×3 64→64) = 4 × 4 718 592 = 18 874 368
        //   layer2 at 4²: 64→128 2 359 296 + 128→128 4 718 592 + downsample 1×1 262 144 + block 1: 2 × 4 718 592 → 16 777 216
        //   layer3 at 4² (dilation 2, stride 1): 128→256 9 437 184 + 256→256 18 874 368 + downsample 1 048 576 + 2 × 18 874 368 → 67 108 864
        //   layer4 at 4² (dilation 4, 3 blocks): 256→512 37 748 736 + 512→512 75 497 472 + downsample 4 194 304 + 4 × 75 497 472 → 419 430 400
        //   total 527 007 744
        // LargeFOV (W 16): fc6 2·16·9·512·16 = 2 359 296, fc7 2·16·16·16 = 8 192, fc8 2·16·16·4 = 2 048 → 2 369 536
        // ASPP (2 rates): 2 × 2·16·9·512·4 = 1 179 648
        var largeFov = DeepLabTiny(SegmentationModel.DeepLabLargeFov);
        var aspp = DeepLabTiny(SegmentationModel.DeepLabAspp);
        Assert.Equal(527_007_744, WeakSeg.Models.ResNet.ResNetFlops.Forward(DeepLabModel.Trunk, 32, 32));
        Assert.Equal(2_369_536, DeepLabFlops.Head(largeFov, 4, 4));
        Assert.Equal(1_179_648, DeepLabFlops.Head(aspp, 4, 4));
        Assert.Equal(529_377_280, SegmentationFlops.Forward(largeFov, 32, 32));
        Assert.Equal(528_187_392, SegmentationFlops.Forward(aspp, 32, 32));
        Assert.Equal(3 * 529_377_280.0, SegmentationFlops.TrainPerImage(largeFov));
        Assert.Equal(2 * 528_187_392.0, SegmentationFlops.InferPerImage(aspp, 32, 32, [1.0], flip: true));
        Assert.Throws<WeakSegException>(() => DeepLabFlops.Head(SegmentationTestData.Tiny(), 4, 4));
    }

    [Theory]
    [InlineData(32, 4)]
    [InlineData(36, 5)]
    [InlineData(41, 6)]
    public void DeepLab_logit_grid_is_the_ceiling_of_a_side_over_8_as_the_count_assumes(int side, int grid)
    {
        using var model = new DeepLabModel(DeepLabTiny(SegmentationModel.DeepLabAspp));
        using var images = TorchSharp.torch.zeros(1, 3, side, side);
        using var logits = model.StrideEightLogits(images);
        Assert.Equal(new long[] { 1, 4, grid, grid }, logits.shape);
        Assert.Equal(grid, (side + 7) / 8);
    }

    [Fact]
    public void Bench_seg_times_the_deeplab_named_by_seg_model_and_says_so()
    {
        var (output, json) = RunBenchSeg("--seg-model", "deeplab-aspp");
        Assert.StartsWith("deeplab-aspp (cpu preset): crop 96", output.Split('\n').First(l => l.Contains("preset")));
        Assert.Equal("deeplab-aspp", json.GetProperty("network").GetString());
        Assert.Equal("cpu", json.GetProperty("model").GetString());
        var config = Presets.Get(MethodPreset.Cpu).Segmentation(SegmentationModel.DeepLabAspp) with { NumClasses = 10 };
        Assert.Equal(3 * DeepLabFlops.Forward(config, 96, 96), json.GetProperty("train_flops_per_image").GetDouble());
        Assert.Equal(2 * DeepLabFlops.Forward(config, 96, 96), json.GetProperty("infer_flops_per_image").GetDouble());
    }
    /// <summary>`weakseg bench seg` at 1 step, 1 image, batch 1 with <paramref name="extra"/> options: (stdout, the --json file).</summary>
    static (string Output, JsonElement Json) RunBenchSeg(params string[] extra)
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("seg.json");
        var (previousOut, previousErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        int code;
        try { code = WeakSeg.Cli.Program.Run(["bench", "seg", .. extra, "--steps", "1", "--warmup", "0", "--images", "1", "--batch-size", "1", "--gemm-size", "64", "--threads", "2", "--json", path]); }
        finally { Console.SetOut(previousOut); Console.SetError(previousErr); }
        Assert.True(code == 0, e.ToString());
        return (o.ToString(), JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone());
    }
}
