using WeakSeg.Evaluation;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Evaluation;

public class MapArtifactRateTests
{
    // 2×3 image. Ground truth: background at pixels 0 and 3, class 1 at 1 and 2, ignored at 4, class 2 at 5.
    static readonly byte[] Gt = [0, 1, 1, 0, 255, 2];

    // Class 1: mass off the ignored pixel 0.5 + 1 + 0.5 + 0.2 + 0 = 2.2, on background 0.5 + 0.2 = 0.7.
    // Class 2: mass 0.1 + 0 + 0 + 0.3 + 1 = 1.4, on background 0.1 + 0.3 = 0.4. Class 3: all zero (left out).
    static readonly CamMaps Maps = new("a",
        [0.5f, 1f, 0.5f, 0.2f, 0.9f, 0f, /* class 2 */ 0.1f, 0f, 0f, 0.3f, 0.4f, 1f, /* class 3 */ 0f, 0f, 0f, 0f, 0.7f, 0f], [1, 2, 3], 2, 3);

    [Fact]
    public void Shares_and_rate_match_the_hand_computation()
    {
        var shares = MapArtifactRate.ImageShares(Maps, Gt).ToList();
        Assert.Equal([1, 2], shares.Select(s => s.Class));
        Assert.Equal(0.7 / 2.2, shares[0].Share, 6);
        Assert.Equal(0.4 / 1.4, shares[1].Share, 6);

        // A second image: class 2 entirely on background → share 1.
        var second = new CamMaps("b", [0.3f, 0.6f], [2], 1, 2);
        var r = MapArtifactRate.Run([(Maps, Gt), (second, new byte[] { 0, 0 })], numClasses: 4);
        Assert.Equal(3, r.Pairs);
        Assert.Equal((0.7 / 2.2 + 0.4 / 1.4 + 1.0) / 3, r.Rate, 6);
        Assert.True(double.IsNaN(r.ByClass[0]));
        Assert.Equal(0.7 / 2.2, r.ByClass[1], 6);
        Assert.Equal((0.4 / 1.4 + 1.0) / 2, r.ByClass[2], 6);
        Assert.True(double.IsNaN(r.ByClass[3]));
    }

    [Fact]
    public void Evaluate_reads_maps_and_masks_from_disk()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = tmp.File("voc");
        var cams = tmp.File("cams");
        EvalTestData.WriteDataset(root, "train", ("a", EvalTestData.Mask(3, 2, Gt)));
        File.WriteAllLines(Path.Combine(root, "classes.txt"), ["background", "one", "two", "three"]);
        CamMapFile.Write(cams, "a", Maps.Maps, Maps.Classes, 2, 3);
        var r = MapArtifactRate.Evaluate(cams, root, "train", maxParallelism: 1);
        Assert.Equal(2, r.Pairs);
        Assert.Equal((0.7 / 2.2 + 0.4 / 1.4) / 2, r.Rate, 6);
    }

    [Fact]
    public void A_size_mismatch_names_the_files()
    {
        var e = Assert.Throws<WeakSegException>(() => MapArtifactRate.ImageShares(Maps, [0, 1]).ToList());
        Assert.Contains("2 pixels", e.Message);
    }
}
