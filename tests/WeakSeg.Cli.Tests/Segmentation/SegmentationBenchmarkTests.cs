using System.Text.Json;
using WeakSeg.Segmentation;
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
        Assert.Equal(3 * 1_271_936, SegmenterFlops.TrainPerImage(tiny));
        // inference: flip doubles; at scale 2 a 64×64 image needs Starts(64, 32, 21) = {0, 21, 32} → 3×3 windows
        Assert.Equal(2 * 1_271_936, SegmenterFlops.InferPerImage(tiny, 32, 32, [1.0], flip: true));
        Assert.Equal(1_271_936 * (1 + 9), SegmenterFlops.InferPerImage(tiny, 32, 32, [1.0, 2.0], flip: false));
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
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("seg.json");
        var (previousOut, previousErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        int code;
        try { code = WeakSeg.Cli.Program.Run(["bench", "seg", "--steps", "1", "--warmup", "0", "--images", "1", "--batch-size", "1", "--gemm-size", "64", "--threads", "2", "--json", path]); }
        finally { Console.SetOut(previousOut); Console.SetError(previousErr); }
        Assert.True(code == 0, e.ToString());
        Assert.Contains("| training images/s |", o.ToString());
        var json = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        Assert.Equal("cpu", json.GetProperty("model").GetString());
        Assert.Equal(96, json.GetProperty("crop_size").GetInt32());
        Assert.Equal(3 * SegmenterFlops.Forward(SegmentationConfig.Cpu with { NumClasses = 10 }, 96, 96), json.GetProperty("train_flops_per_image").GetDouble());
    }
}
