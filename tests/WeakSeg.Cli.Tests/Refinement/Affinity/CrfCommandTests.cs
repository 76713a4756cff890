using WeakSeg.Data;
using WeakSeg.Refinement;
using WeakSeg.Tests.Data;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Refinement.Affinity;

public class CrfCommandTests
{
    [Fact]
    public void Crf_verb_refines_noisy_labels_towards_the_image_and_resumes()
    {
        using var dir = TestPaths.NewTempDir();
        var root = VocTestData.CreateBlocksDataset(dir.File("voc"), 3, 32, 24);
        var layout = new VocLayout(root);
        var pred = dir.File("pred");
        Directory.CreateDirectory(pred);
        var rng = new Random(4);
        long wrongBefore = 0;
        foreach (var name in layout.ReadSplit("train"))
        {
            var gt = LabelPng.Read(layout.MaskPath(name)!);
            var noisy = new LabelMap(gt.Width, gt.Height, gt.Labels.Select(v => rng.NextDouble() < 0.1 ? (byte)rng.Next(4) : v).ToArray());
            wrongBefore += noisy.Labels.Zip(gt.Labels).Count(p => p.First != p.Second);
            LabelPng.Write(Path.Combine(pred, name + ".png"), noisy);
        }
        var outDir = dir.File("out");
        Assert.Equal(0, WeakSeg.Cli.Program.Run(["crf", "--pred", pred, "--data", root, "--split", "train", "--out", outDir, "--preset", "psa"]));
        long wrongAfter = 0;
        foreach (var name in layout.ReadSplit("train"))
            wrongAfter += LabelPng.Read(Path.Combine(outDir, name + ".png")).Labels.Zip(LabelPng.Read(layout.MaskPath(name)!).Labels).Count(p => p.First != p.Second);
        Assert.True(wrongAfter < wrongBefore / 2, $"{wrongBefore} → {wrongAfter} wrong pixels");
        var again = CrfPostProcessing.RefineDirectory(pred, root, "train", outDir);
        Assert.Equal((0, 3), (again.Written, again.Skipped));
        var missing = Assert.Throws<WeakSegException>(() => CrfPostProcessing.RefineDirectory(dir.File("none"), root, "train", outDir));
        Assert.Contains(dir.File("none"), missing.Message);
    }
}
