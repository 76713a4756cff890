using WeakSeg.Evaluation;
using WeakSeg.Interop;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Evaluation;

public class CamMapFileTests
{
    static readonly float[] TwoPlanes = [0f, 0.25f, 0.5f, 1f, 0.1f, 0.2f, 0.3f, 0.7f, 0.123456f, 0.9f, 0.33333f, 0.05f]; // [2, 2, 3]

    [Fact]
    public void Round_trips_float32_exactly_and_float16_to_half_precision()
    {
        using var tmp = TestPaths.NewTempDir();
        CamMapFile.Write(tmp.Path, "img1", TwoPlanes, [15, 3], 2, 3);
        var back = CamMapFile.Read(tmp.Path, "img1", numClasses: 20);
        Assert.Equal(TwoPlanes, back.Maps);
        Assert.Equal([15, 3], back.Classes);
        Assert.Equal((2, 3), (back.Height, back.Width));
        var classes = Npy.Read(CamMapFile.ClassesPath(tmp.Path, "img1"));
        Assert.Equal(NpyDType.Int64, classes.DType);
        Assert.Equal([2], classes.Shape);
        Assert.Equal([2, 2, 3], Npy.Read(CamMapFile.MapPath(tmp.Path, "img1")).Shape);

        CamMapFile.Write(tmp.Path, "img2", TwoPlanes, [1, 2], 2, 3, float16: true);
        Assert.Equal(NpyDType.Float16, Npy.Read(CamMapFile.MapPath(tmp.Path, "img2")).DType);
        var half = CamMapFile.Read(tmp.Path, "img2");
        Assert.Equal(TwoPlanes.Select(v => (float)(Half)v), half.Maps);
        Assert.NotEqual(TwoPlanes[8], half.Maps[8]); // 0.123456 is not a half value
        Assert.Equal(["img1", "img2"], CamMapFile.ListNames(tmp.Path));
    }

    [Fact]
    public void Write_rejects_inconsistent_input()
    {
        using var tmp = TestPaths.NewTempDir();
        var e = Assert.Throws<WeakSegException>(() => CamMapFile.Write(tmp.Path, "a", TwoPlanes, [1, 2, 3], 2, 3));
        Assert.Contains("do not match [3, 2, 3]", e.Message);
        e = Assert.Throws<WeakSegException>(() => CamMapFile.Write(tmp.Path, "a", TwoPlanes, [4, 4], 2, 3));
        Assert.Contains("class index 4 is listed twice", e.Message);
        var bad = (float[])TwoPlanes.Clone(); bad[7] = 1.5f;
        e = Assert.Throws<WeakSegException>(() => CamMapFile.Write(tmp.Path, "a", bad, [1, 2], 2, 3));
        Assert.Contains("map value 1.5 at plane 1, pixel 1 is not in [0, 1]", e.Message);
        Assert.False(File.Exists(CamMapFile.MapPath(tmp.Path, "a")));
    }

    [Fact]
    public void Read_rejects_mismatched_pairs_naming_the_file()
    {
        using var tmp = TestPaths.NewTempDir();
        // maps with 2 planes, class list of 3
        Npy.Write(CamMapFile.MapPath(tmp.Path, "x"), NpyArray.FromFloat32(TwoPlanes, [2, 2, 3]));
        Npy.Write(CamMapFile.ClassesPath(tmp.Path, "x"), NpyArray.FromInt64([1, 2, 3], [3]));
        var e = Assert.Throws<WeakSegException>(() => CamMapFile.Read(tmp.Path, "x"));
        Assert.Contains(CamMapFile.MapPath(tmp.Path, "x"), e.Message);
        Assert.Contains("2 planes", e.Message); Assert.Contains("3 classes", e.Message);

        // class index beyond K
        Npy.Write(CamMapFile.ClassesPath(tmp.Path, "x"), NpyArray.FromInt64([1, 21], [2]));
        e = Assert.Throws<WeakSegException>(() => CamMapFile.Read(tmp.Path, "x", numClasses: 20));
        Assert.StartsWith(CamMapFile.ClassesPath(tmp.Path, "x"), e.Message);
        Assert.Contains("class index 21 is outside the foreground classes 1..20", e.Message);

        // 2-D maps
        Npy.Write(CamMapFile.MapPath(tmp.Path, "x"), NpyArray.FromFloat32(TwoPlanes, [2, 6]));
        e = Assert.Throws<WeakSegException>(() => CamMapFile.Read(tmp.Path, "x"));
        Assert.Contains("shape (2, 6), expected (K', H, W)", e.Message);

        // float classes
        Npy.Write(CamMapFile.MapPath(tmp.Path, "x"), NpyArray.FromFloat32(TwoPlanes, [2, 2, 3]));
        Npy.Write(CamMapFile.ClassesPath(tmp.Path, "x"), NpyArray.FromFloat32([1f, 2f], [2]));
        e = Assert.Throws<WeakSegException>(() => CamMapFile.Read(tmp.Path, "x"));
        Assert.Contains("dtype <f4, expected <i8", e.Message);

        File.Delete(CamMapFile.ClassesPath(tmp.Path, "x"));
        e = Assert.Throws<WeakSegException>(() => CamMapFile.Read(tmp.Path, "x"));
        Assert.Contains("x.classes.npy: class list not found", e.Message);
    }
}
