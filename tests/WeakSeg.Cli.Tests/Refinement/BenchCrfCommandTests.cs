using System.Text.Json;
using WeakSeg.Refinement;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Refinement;

public class BenchCrfCommandTests
{
    [Fact]
    public void Bench_crf_writes_json_with_the_timing_fields()
    {
        using var dir = TestPaths.NewTempDir();
        var json = dir.File("crf.json");
        int code = WeakSeg.Cli.Program.Run(["bench", "crf", "--width", "40", "--height", "30", "--labels", "5", "--iterations", "3",
                                            "--runs", "3", "--warmup", "0", "--threads", "1", "--json", json]);
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.Equal(40, root.GetProperty("width").GetInt32());
        Assert.Equal(5, root.GetProperty("labels").GetInt32());
        Assert.Equal(3, root.GetProperty("iterations").GetInt32());
        Assert.Equal(1, root.GetProperty("threads").GetInt32());
        double perImage = root.GetProperty("seconds_per_image").GetDouble();
        double build = root.GetProperty("seconds_lattice_build").GetDouble();
        double perIteration = root.GetProperty("seconds_per_iteration").GetDouble();
        Assert.True(perImage > 0 && build > 0 && perIteration > 0);
        // Medians of different quantities need not add up exactly, but the parts cannot exceed the whole by much.
        Assert.True(build + 3 * perIteration < 1.5 * perImage, $"{build} + 3 × {perIteration} vs {perImage}");
        Assert.False(File.Exists(json + ".tmp"));
    }

    [Fact]
    public void Bench_crf_with_an_unknown_preset_exits_with_code_1()
    {
        // The message itself is asserted in DenseCrfTests.Presets_carry_the_seed_repositories_values (stderr is shared
        // by parallel tests, so it is not captured here).
        Assert.Equal(1, WeakSeg.Cli.Program.Run(["bench", "crf", "--preset", "nope", "--width", "8", "--height", "8"]));
    }

    [Fact]
    public void Synthetic_benchmark_input_is_deterministic_and_normalised()
    {
        var (rgbA, pA) = DenseCrfBenchmark.SyntheticInput(20, 10, 4, 3);
        var (rgbB, pB) = DenseCrfBenchmark.SyntheticInput(20, 10, 4, 3);
        var (rgbC, _) = DenseCrfBenchmark.SyntheticInput(20, 10, 4, 4);
        Assert.Equal(rgbA, rgbB);
        Assert.Equal(pA, pB);
        Assert.NotEqual(rgbA, rgbC);
        for (int i = 0; i < 200; i++)
            Assert.Equal(1f, pA[i] + pA[200 + i] + pA[400 + i] + pA[600 + i], 1e-5f);
    }
}
