using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Methods;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Reliability;

/// <summary>Corrupt checkpoints, impossible allocations and malformed configs give one line naming the file, not a native abort.</summary>
[Collection("Torch")]
public class CorruptInputTests
{
    /// <summary>A finished 4-step run with checkpoints at steps 2 and 4, without its final weights (so --resume reads step 4).</summary>
    static (string Data, string Run, TrainRecipe Recipe) RunWithCheckpoints(TempDir dir)
    {
        var data = PipelineTestData.MakeData(dir.File("data"));
        var recipe = PipelineTestData.TinyRecipe(steps: 4);
        var run = dir.File("run");
        TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = recipe });
        File.Delete(Path.Combine(run, "model-final.bin"));
        return (data, run, recipe);
    }

    static string Step(string run, long step, string file) => Path.Combine(run, "checkpoints", CheckpointStore.FolderName(step), file);

    static WeakSegException Resume(string data, string run, TrainRecipe recipe) => Assert.Throws<WeakSegException>(() =>
        TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = recipe, Resume = true }));

    [Fact]
    public void The_real_generator_state_passes_the_layout_check_and_damaged_ones_do_not()
    {
        using var state = torch.get_rng_state();
        var bytes = state.data<byte>().ToArray();
        Assert.Equal(CheckpointStore.CpuRngStateBytes, bytes.Length);
        Assert.Null(CheckpointStore.RngStateProblem(bytes));
        Assert.Contains("100 bytes, expected 5056", CheckpointStore.RngStateProblem(bytes.AsSpan(0, 100)));
        var badLeft = (byte[])bytes.Clone();
        BitConverter.GetBytes(0).CopyTo(badLeft, 8);                                     // left = 0: libtorch rejects it with an abort
        Assert.Contains("not a valid mt19937 state", CheckpointStore.RngStateProblem(badLeft));
        var unseeded = (byte[])bytes.Clone();
        BitConverter.GetBytes(0).CopyTo(unseeded, 12);
        Assert.Contains("seeded 0", CheckpointStore.RngStateProblem(unseeded));
    }

    [Fact]
    public void A_truncated_rng_state_is_one_error_naming_the_file_and_the_older_checkpoint()
    {
        using var dir = TestPaths.NewTempDir();
        var (data, run, recipe) = RunWithCheckpoints(dir);
        var rng = Step(run, 4, CheckpointStore.RngFile);
        File.WriteAllBytes(rng, File.ReadAllBytes(rng)[..100]);
        var e = Resume(data, run, recipe);
        Assert.StartsWith(rng + ": corrupt checkpoint file: its CRC-32", e.Message);
        Assert.Contains("to resume from the older checkpoint of step 2", e.Message);

        // A checkpoint without recorded checksums (written by an older version): the layout check still catches it.
        var statePath = Step(run, 4, CheckpointStore.StateFile);
        var state = JsonNode.Parse(File.ReadAllText(statePath))!.AsObject();
        Assert.True(state.Remove("checksums"));
        File.WriteAllText(statePath, state.ToJsonString());
        var old = Resume(data, run, recipe);
        Assert.StartsWith(rng + ": corrupt RNG state: 100 bytes, expected 5056", old.Message);

        // Following the hint works: the older checkpoint resumes and completes the run.
        Directory.Delete(Path.GetDirectoryName(rng)!, recursive: true);
        var resumed = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = recipe, Resume = true });
        Assert.True(resumed.Result.Completed);
        Assert.Equal(2, resumed.Result.StepsRun);
    }

    [Fact]
    public void Damaged_optimizer_and_model_files_are_named_before_libtorch_reads_them()
    {
        using var dir = TestPaths.NewTempDir();
        var (data, run, recipe) = RunWithCheckpoints(dir);
        var optimizer = Step(run, 4, CheckpointStore.OptimizerFile);
        var original = File.ReadAllBytes(optimizer);
        var flipped = (byte[])original.Clone();
        flipped[^9] ^= 0x40;                                                              // one bit in a stored value, same size
        File.WriteAllBytes(optimizer, flipped);
        Assert.StartsWith(optimizer + ": corrupt checkpoint file", Resume(data, run, recipe).Message);
        File.WriteAllBytes(optimizer, original);

        var model = Step(run, 4, CheckpointStore.ModelFile);
        File.WriteAllBytes(model, []);
        Assert.StartsWith(model + ": corrupt checkpoint file", Resume(data, run, recipe).Message);
        File.Delete(model);
        Assert.StartsWith(model + ": checkpoint file not found", Resume(data, run, recipe).Message);
    }

    [Fact]
    public void Maps_whose_attention_cannot_fit_in_memory_are_refused_before_allocating()
    {
        var backbone = new VitConfig { PatchSize = 16, Depth = 12, NumHeads = 6 };
        var options = new LocalizationOptions { Scales = [1.0, 50.0], Flip = true };
        // 64 px at scale 50: 3200 px, 200 × 200 = 40000 patches; 2 views × 12 layers × 6 heads × 40001² floats = 576 GB.
        var e = Assert.Throws<WeakSegException>(() => CamPipeline.EnsureFitsInMemory(backbone, "train_000001", 64, 64, options, 24L << 30));
        Assert.Contains("image 'train_000001' (64x64) at scale 50 is 3200x3200 pixels, 40000 patches", e.Message);
        Assert.Contains("need 858.3 GiB", e.Message);                                     // 2·12·6·40001²·4 B / 2³⁰
        // A VOC-sized image at the usual scales fits comfortably.
        CamPipeline.EnsureFitsInMemory(backbone, "x", 375, 500, new LocalizationOptions { Scales = [1.0, 0.5, 1.5, 2.0], Flip = true }, 24L << 30);
    }

    [Fact]
    public void Cli_cam_with_huge_scales_is_one_line_and_exit_1()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 2).ToJsonString());
        var run = dir.File("run");
        Assert.Equal(0, CliRunner.Run("train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config).Code);
        var cam = CliRunner.Run("cam", "--run", run, "--out", dir.File("maps"), "--scales", "400", "--map", "class-to-patch");
        Assert.Equal(1, cam.Code);
        var lines = cam.Err.Trim().Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();    // progress lines aside
        Assert.Single(lines);
        Assert.StartsWith("error: image 'train_000000' (32x32) at scale 400", lines[0]);
        Assert.Contains("use smaller --scales", lines[0]);
        Assert.False(Directory.Exists(dir.File("maps")));                                  // refused before the output folder is made
    }

    [Fact]
    public void A_config_with_a_key_given_twice_is_one_line_naming_the_file_and_the_key()
    {
        using var dir = TestPaths.NewTempDir();
        var dup = dir.File("dup.json");
        File.WriteAllText(dup, "{\"trainer\": {\"steps\": 5, \"steps\": 7, \"batch_size\": 8}}");
        var result = CliRunner.Run("train", "--method", "mctformer-v2", "--data", dir.File("data"), "--out", dir.File("o"), "--config", dup);
        Assert.Equal(1, result.Code);
        Assert.StartsWith($"error: {dup}: key 'steps' is given twice in '$.trainer' (JSON keys must be unique)", result.Err);
        Assert.Single(result.Err.Trim().Split('\n'));
        Assert.False(Directory.Exists(dir.File("o")));

        var segDup = dir.File("seg.json");
        File.WriteAllText(segDup, "{\"steps\": 5,\n \"steps\": 7}");
        var seg = Assert.Throws<WeakSegException>(() => WeakSeg.Segmentation.SegmentationConfig.FromJson(File.ReadAllText(segDup), segDup));
        Assert.StartsWith($"{segDup}: key 'steps' is given twice in the top-level object", seg.Message);
    }

    [Fact]
    public void Parse_errors_are_one_error_line_with_a_help_hint_and_no_help_text()
    {
        var result = CliRunner.Run("train", "--method", "mctformer-v2", "--data", "d", "--out", "o", "--steps", "abc");
        Assert.Equal(1, result.Code);
        Assert.Equal("", result.Out);
        Assert.Equal("error: Cannot parse argument 'abc' for option '--steps' as an integer. (see `weakseg train --help`)", result.Err.Trim());
        var unknown = CliRunner.Run("train", "--method", "mctformer-v2", "--data", "d", "--out", "o", "--stepz", "5");
        Assert.Equal(1, unknown.Code);
        Assert.Equal("", unknown.Out);
        Assert.Single(unknown.Err.Trim().Split('\n'));
        Assert.Contains("--stepz", unknown.Err);
        Assert.False(Directory.Exists("o"));
        var choice = CliRunner.Run("train", "--method", "mctformer-v2", "--data", "d", "--out", "o", "--preset", "gpu");
        Assert.Equal("error: Argument 'gpu' not recognized. Must be one of: 'cpu' 'paper' (see `weakseg train --help`)", choice.Err.Trim());
    }

    [Fact]
    public void Parallel_failures_are_reported_as_the_first_one()
    {
        var stderr = new StringWriter();
        var previous = Console.Error;
        Console.SetError(stderr);
        try { Assert.Equal(1, WeakSeg.Cli.CliErrors.Report(new AggregateException(new IOException("No space left on device : 'a.jpg.tmp'"), new IOException("No space left on device : 'b.jpg.tmp'")))); }
        finally { Console.SetError(previous); }
        Assert.Equal("error: No space left on device : 'a.jpg.tmp'", stderr.ToString().Trim());
    }
}
