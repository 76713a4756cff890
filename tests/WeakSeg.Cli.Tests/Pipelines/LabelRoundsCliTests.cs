using WeakSeg.Data;
using WeakSeg.Methods.AuxSegNet;
using WeakSeg.Refinement.Saliency;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Pipelines;

/// <summary>The CLI side of label-updating rounds and saliency maps: refusals of `pipeline --rounds`/`--saliency-missing` and `synth --saliency`.</summary>
[Collection("Torch")]
public class LabelRoundsCliTests
{
    [Fact]
    public void Cli_refuses_a_round_count_below_one_and_an_unknown_saliency_policy_in_one_line()
    {
        using var dir = TestPaths.NewTempDir();
        var zero = WeakSeg.Tests.Evaluation.EvalTestData.RunCli("pipeline", "--method", AuxSegNetMethod.MethodName, "--out", dir.File("out"), "--rounds", "0");
        Assert.Equal(1, zero.Exit);
        Assert.Contains("--rounds must be at least 1 (got 0)", zero.Err);
        Assert.Single(zero.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(Directory.Exists(dir.File("out")));
        var policy = WeakSeg.Tests.Evaluation.EvalTestData.RunCli("train", "--method", AuxSegNetMethod.MethodName, "--data", dir.Path, "--out", dir.File("run"),
            "--saliency", dir.Path, "--saliency-missing", "guess");
        Assert.NotEqual(0, policy.Exit);
        Assert.Contains("guess", policy.Err);
    }

    [Fact]
    public void Synth_with_saliency_writes_the_estimated_map_of_every_image_to_the_saliency_folder()
    {
        using var dir = TestPaths.NewTempDir();
        var root = dir.File("data");
        var synth = WeakSeg.Tests.Evaluation.EvalTestData.RunCli("synth", "--out", root, "--train", "4", "--val", "2", "--size", "32", "--classes", "3", "--saliency");
        Assert.True(synth.Exit == 0, synth.Err);
        var samples = new[] { "train", "val" }.SelectMany(split => VocDataset.Open(root, split).Samples).ToList();
        Assert.Equal(6, Directory.GetFiles(Path.Combine(root, SaliencyMaps.DatasetFolder), "*.png").Length);
        foreach (var sample in samples)
        {
            var image = ImageCodec.Load(sample.ImagePath);
            var expected = SaliencyMaps.Estimate(image.Pixels, image.Height, image.Width);
            var written = SaliencyMaps.Read(Path.Combine(root, SaliencyMaps.DatasetFolder), sample.Name, image.Height, image.Width);
            Assert.All(expected.Zip(written), p => Assert.Equal(p.First, p.Second, 0.5 / 255 + 1e-6));
        }
    }
}
