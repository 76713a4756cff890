using WeakSeg.Data;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Data;

public class DataCommandsTests
{
    static (int Code, string Errors) RunCli(params string[] args)
    {
        var previous = Console.Error;
        var capture = new StringWriter();
        Console.SetError(capture);
        try { return (WeakSeg.Cli.Program.Run(args), capture.ToString()); }
        finally { Console.SetError(previous); }
    }

    [Fact]
    public void Info_lists_every_problem_and_exits_1_then_0_when_clean()
    {
        using var dir = TestPaths.NewTempDir();
        VocTestData.CreateBlocksDataset(dir.Path, 3);
        VocTestData.CreateBlocksDataset(dir.Path, 2, split: "val");
        Assert.Equal(0, RunCli("info", "--data", dir.Path).Code);

        File.AppendAllLines(Path.Combine(dir.Path, "ImageSets", "Segmentation", "train.txt"), ["ghost"]);
        var corrupt = Path.Combine(dir.Path, "JPEGImages", "img_001.jpg");
        File.WriteAllText(corrupt, "not an image");
        var (code, errors) = RunCli("info", "--data", dir.Path, "--split", "train");
        Assert.Equal(1, code);
        Assert.Contains("2 problem(s)", errors);
        Assert.Contains(Path.Combine(dir.Path, "JPEGImages", "ghost.jpg"), errors);
        Assert.Contains(corrupt + ": not a readable image", errors);
    }

    [Fact]
    public void Coco_masks_command_writes_a_dataset_info_accepts()
    {
        using var dir = TestPaths.NewTempDir();
        var images = Path.Combine(dir.Path, "val2014");
        ImageCodec.Save(Path.Combine(images, "COCO_val2014_000000000001.jpg"), new RgbImage(6, 5));
        var ann = dir.File("instances_val2014.json");
        File.WriteAllText(ann, """
            {"images":[{"id":1,"file_name":"COCO_val2014_000000000001.jpg","width":6,"height":5}],
             "categories":[{"id":1,"name":"person"},{"id":2,"name":"bicycle"}],
             "annotations":[{"id":1,"image_id":1,"category_id":2,"iscrowd":0,"segmentation":[[1,1,4,1,4,3,1,3]]}]}
            """);
        var outDir = Path.Combine(dir.Path, "out");
        Assert.Equal(0, RunCli("coco-masks", "--annotations", ann, "--out", outDir, "--images", images).Code);
        var ds = VocDataset.Open(outDir, "val");
        Assert.Equal(Path.Combine(outDir, "JPEGImages", "COCO_val2014_000000000001.jpg"), ds.Samples[0].ImagePath);
        Assert.Equal([2], ds.Samples[0].Classes);
        var mask = LabelPng.Read(ds.Samples[0].MaskPath!);
        Assert.Equal(6, mask.Labels.Count(v => v == 2)); // x 1..3, y 1..2
        Assert.Equal(0, RunCli("info", "--data", outDir).Code);
    }
}
